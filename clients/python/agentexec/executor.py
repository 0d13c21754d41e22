"""AG2's CodeExecutor protocol over agentexec."""

import re

from .client import AgentexecClient, AgentexecError


class CodeBlock:
    """A code block as AG2 passes it (any object with ``language`` and ``code`` works too)."""

    def __init__(self, code, language):
        self.code = code
        self.language = language


class CodeResult:
    """What ``execute_code_blocks`` returns: AG2's CommandLineCodeResult fields."""

    def __init__(self, exit_code, output, code_file=None, verdict=None, result=None):
        self.exit_code = exit_code
        self.output = output
        self.code_file = code_file
        self.verdict = verdict
        self.result = result or {}

    def __repr__(self):
        return "CodeResult(exit_code=%r, output=%r)" % (self.exit_code, self.output)


class MarkdownCodeExtractor:
    """Finds fenced blocks (```lang ... ```) in a message, as AG2's extractor of the same name."""

    _FENCE = re.compile(r"```[ \t]*(\w+)?[^\n]*\n(.*?)```", re.DOTALL)

    def extract_code_blocks(self, message):
        if isinstance(message, dict):
            message = message.get("content") or ""
        if not isinstance(message, str):
            message = str(message or "")
        return [CodeBlock(code=m.group(2), language=(m.group(1) or "python").lower())
                for m in self._FENCE.finditer(message)]


class AgentexecCodeExecutor:
    """Runs AG2's code blocks in an agentexec sandbox whose workspace lasts until ``restart()``.

    ``limits`` is a dict like {"timeoutSeconds": 60, "memoryMb": 512}; ``timeout`` is AG2's
    per-execution timeout in seconds (used when limits has no timeoutSeconds).
    """

    def __init__(self, url, api_key=None, timeout=60, limits=None, sandbox_language="python", profile=None):
        self.client = AgentexecClient(url, api_key, timeout=max(30.0, float(timeout) * 3 + 30))
        self.limits = dict(limits or {})
        self.limits.setdefault("timeoutSeconds", timeout)
        self.sandbox_language = sandbox_language
        self.profile = profile
        self._sandbox_id = None
        self._extractor = MarkdownCodeExtractor()

    @property
    def code_extractor(self):
        return self._extractor

    def _sandbox(self):
        if self._sandbox_id is None:
            created = self.client.create_sandbox(self.sandbox_language, limits=self.limits, profile=self.profile)
            self._sandbox_id = created["id"]
        return self._sandbox_id

    def execute_code_blocks(self, code_blocks):
        """Runs the blocks in order, stopping at the first failure, as AG2 does."""
        blocks = []
        for block in code_blocks:
            language = getattr(block, "language", None)
            code = getattr(block, "code", None)
            if isinstance(block, dict):
                language, code = block.get("language"), block.get("code")
            blocks.append(((language or "python").lower(), code or ""))
        if not blocks:
            return CodeResult(0, "")
        try:
            result = self.client.execute(blocks=blocks, sandbox_id=self._sandbox(), limits=self.limits)
        except AgentexecError as e:
            if e.status == 404 and self._sandbox_id is not None:
                # the sandbox expired or was removed: start a fresh one once
                self._sandbox_id = None
                result = self.client.execute(blocks=blocks, sandbox_id=self._sandbox(), limits=self.limits)
            elif e.status == 400 and "unknown language" in e.message:
                # AG2's own answer for a block in a language it cannot run
                unknown = next(lang for lang, _ in blocks if ("'%s'" % lang) in e.message or lang in e.message)
                return CodeResult(1, "unknown language " + unknown)
            else:
                raise
        output = result.get("output", "")
        if result.get("verdict") == "TIMEOUT":
            output += "\nTimeout"
        return CodeResult(result.get("exitCode", 1), output, verdict=result.get("verdict"), result=result)

    def restart(self):
        """Drops the workspace: the next execution starts in a fresh sandbox."""
        if self._sandbox_id is not None:
            sandbox_id, self._sandbox_id = self._sandbox_id, None
            try:
                self.client.delete_sandbox(sandbox_id)
            except AgentexecError as e:
                if e.status != 404:
                    raise

    def close(self):
        self.restart()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
