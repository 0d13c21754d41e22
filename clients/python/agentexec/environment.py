"""AG2 1.x: a ``CodeEnvironment`` (``ag2.tools.code``) that runs code in an agentexec sandbox.

AG2 1.x dropped the classic agents; code runs through ``ag2.tools.SandboxCodeTool(environment)``, which calls the
environment's ``await run(code, language, context=...)`` and reads ``exit_code`` and ``output`` from the
``CodeRunResult`` it returns, and lists ``supported_languages`` to the model.
"""

import asyncio

from .executor import DEFAULT_IMAGE, AgentexecCodeExecutor

try:
    from ag2.tools.code import CodeRunResult
except ImportError:
    class CodeRunResult:
        """AG2 1.x's CodeRunResult fields: ``output`` and ``exit_code``."""

        def __init__(self, output, exit_code):
            self.output = output
            self.exit_code = exit_code

        def __eq__(self, other):
            return isinstance(other, CodeRunResult) and (self.output, self.exit_code) == (other.output, other.exit_code)

        def __repr__(self):
            return "CodeRunResult(output=%r, exit_code=%r)" % (self.output, self.exit_code)


class AgentexecCodeEnvironment:
    """AG2 1.x's CodeEnvironment protocol over one agentexec sandbox (its files last until ``close()``).

    ``languages`` are the ones offered to the model (the polyglot image runs all three). Each ``run`` is one
    block through ``AgentexecCodeExecutor``: same verdict lines, lost-workspace notes and unknown-language answers.
    """

    def __init__(self, url=None, api_key=None, *, languages=("python", "bash", "javascript"), timeout=60,
                 limits=None, image=DEFAULT_IMAGE, executor=None):
        if executor is None:
            if url is None:
                raise ValueError("give the gateway's url (or an AgentexecCodeExecutor as executor)")
            executor = AgentexecCodeExecutor(url, api_key, timeout=timeout, limits=limits, image=image)
        self.executor = executor
        self._languages = tuple(languages)

    @property
    def supported_languages(self):
        return self._languages

    async def run(self, code, language, *, context=None):
        """Runs one block; the HTTP call waits in a worker thread, so the event loop stays free."""
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(None, self.executor.execute_code_blocks,
                                            [{"code": code, "language": language}])
        return CodeRunResult(output=result.output, exit_code=result.exit_code)

    def close(self):
        self.executor.stop()

    async def aclose(self):
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.aclose()
