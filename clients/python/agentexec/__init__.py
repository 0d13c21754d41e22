"""agentexec client for Python, standard library only.

AG2 0.x (``import autogen``) users plug it in as the code executor of a UserProxyAgent:

    from autogen import UserProxyAgent
    from agentexec import AgentexecCodeExecutor
    executor = AgentexecCodeExecutor("http://127.0.0.1:8080", api_key="aex_...")
    user_proxy = UserProxyAgent("user_proxy", code_execution_config={"executor": executor})

It implements AG2's CodeExecutor protocol: ``code_extractor`` (AG2's MarkdownCodeExtractor behaviour),
``execute_code_blocks(code_blocks)`` returning AG2's CommandLineCodeResult (AG2's own class when ``autogen`` is
importable), and ``restart()``. AG2 1.x users take ``AgentexecCodeEnvironment`` (``agentexec.environment``), a
``CodeEnvironment`` for ``ag2.tools.SandboxCodeTool``.
"""

from ._types import AG2_TYPES, AgentexecCodeResult, CodeBlock, CodeResult, CommandLineCodeResult
from .environment import AgentexecCodeEnvironment, CodeRunResult
from .client import AgentexecClient, AgentexecError
from .executor import DEFAULT_IMAGE, AgentexecCodeExecutor
from .extractor import MarkdownCodeExtractor, content_str, extract_code, infer_lang

__all__ = ["AG2_TYPES", "AgentexecClient", "AgentexecCodeEnvironment", "AgentexecCodeExecutor",
           "AgentexecCodeResult", "AgentexecError", "CodeBlock", "CodeResult", "CodeRunResult",
           "CommandLineCodeResult", "DEFAULT_IMAGE", "MarkdownCodeExtractor", "content_str", "extract_code",
           "infer_lang"]
