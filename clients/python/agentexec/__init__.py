"""agentexec client for Python, standard library only.

AG2 (AutoGen) users plug it in as the code executor of a UserProxyAgent:

    from agentexec import AgentexecCodeExecutor
    executor = AgentexecCodeExecutor("http://127.0.0.1:8080", api_key="aex_...")
    user_proxy = UserProxyAgent("user_proxy", code_execution_config={"executor": executor})

It implements AG2's CodeExecutor protocol: ``code_extractor``, ``execute_code_blocks(code_blocks)``
returning an object with ``exit_code`` and ``output``, and ``restart()``.
"""

from .client import AgentexecClient, AgentexecError
from .executor import AgentexecCodeExecutor, CodeBlock, CodeResult, MarkdownCodeExtractor

__all__ = ["AgentexecClient", "AgentexecError", "AgentexecCodeExecutor", "CodeBlock", "CodeResult",
           "MarkdownCodeExtractor"]
