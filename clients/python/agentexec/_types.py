"""The result and block types: AG2's own (``autogen.coding``) when AG2 0.x is importable, else look-alikes.

With AG2 installed, ``execute_code_blocks`` returns an ``AgentexecCodeResult``, a subclass of AG2's pydantic
``CommandLineCodeResult`` (so ``isinstance(r, CodeResult)`` and ``r.code_file`` hold as with AG2's executors) with
two more fields: ``verdict`` (agentexec's, e.g. TIMEOUT) and ``result`` (the gateway's whole result). Without AG2
the same names are plain classes with the same fields and keyword constructors.
"""

from typing import Any, Dict, Optional

try:
    from autogen.coding.base import CodeBlock, CodeResult, CommandLineCodeResult
    from pydantic import Field

    AG2_TYPES = True

    class AgentexecCodeResult(CommandLineCodeResult):
        """AG2's CommandLineCodeResult plus agentexec's verdict and the gateway's whole result."""

        verdict: Optional[str] = Field(default=None, description="agentexec's verdict: OK, TIMEOUT, MEMORY_LIMIT, ...")
        result: Dict[str, Any] = Field(default_factory=dict, description="the gateway's result of the last request")

except ImportError:
    AG2_TYPES = False

    class _Record:
        _fields = ()

        def __eq__(self, other):
            return type(self) is type(other) and all(getattr(self, f) == getattr(other, f) for f in self._fields)

        def __repr__(self):
            return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % (f, getattr(self, f)) for f in self._fields))

    class CodeBlock(_Record):
        """A code block: ``code`` and ``language`` (AG2's CodeBlock fields)."""

        _fields = ("code", "language")

        def __init__(self, code, language):
            self.code = code
            self.language = language

    class CodeResult(_Record):
        """The result of running code blocks: ``exit_code`` and ``output`` (AG2's CodeResult fields)."""

        _fields = ("exit_code", "output")

        def __init__(self, exit_code, output):
            self.exit_code = exit_code
            self.output = output

    class CommandLineCodeResult(CodeResult):
        """A CodeResult with ``code_file``: the file the first block was saved as (AG2's field)."""

        _fields = ("exit_code", "output", "code_file")

        def __init__(self, exit_code, output, code_file=None):
            super().__init__(exit_code, output)
            self.code_file = code_file

    class AgentexecCodeResult(CommandLineCodeResult):
        """A CommandLineCodeResult plus agentexec's ``verdict`` and the gateway's whole ``result``."""

        _fields = ("exit_code", "output", "code_file", "verdict")

        def __init__(self, exit_code, output, code_file=None, verdict=None, result=None):
            super().__init__(exit_code, output, code_file)
            self.verdict = verdict
            self.result = result if result is not None else {}
