"""The client inside the real AG2, when its source is available (AGENTEXEC_AG2_SOURCE, see tests/__init__.py, or an
installed AG2): AG2's own types, AG2's own extractor compared with ours, AG2 0.x's UserProxyAgent replying with the
client as its executor next to AG2's LocalCommandLineCodeExecutor, and AG2 1.x's SandboxCodeTool. Each part skips
with the reason when that part of AG2 cannot be imported."""

import asyncio
import importlib
import json
import os
import tempfile
import unittest

import agentexec
from agentexec import AgentexecCodeEnvironment, AgentexecCodeExecutor, MarkdownCodeExtractor

from .support import KEY, URL, fence


def _try_import(name, attribute=None):
    try:
        module = importlib.import_module(name)
        return (getattr(module, attribute) if attribute else module), None
    except Exception as e:  # an AG2 that is there but cannot load says why, and the part skips
        where = os.environ.get("AGENTEXEC_AG2_SOURCE") or "the installed packages"
        return None, "cannot import %s%s from %s: %s: %s" % (
            name, "." + attribute if attribute else "", where, type(e).__name__, e)


AG2_CODING, WHY_NO_CODING = _try_import("autogen.coding.base")
AG2_EXTRACTOR, WHY_NO_EXTRACTOR = _try_import("autogen.coding.markdown_code_extractor", "MarkdownCodeExtractor")
AG2_LOCAL, WHY_NO_LOCAL = _try_import("autogen.coding.local_commandline_code_executor", "LocalCommandLineCodeExecutor")
USER_PROXY, WHY_NO_USER_PROXY = _try_import("autogen", "UserProxyAgent")
CONVERSABLE, _ = _try_import("autogen", "ConversableAgent")
SANDBOX_TOOL, WHY_NO_AG2_V1 = _try_import("ag2.tools", "SandboxCodeTool")

MESSAGES = [
    "Run this:\n```python\nprint('hi')\n```\nand\n```sh\necho there\n```\n",
    '```python\nprint("```")\nprint("done")\n```',
    "```python\r\nx = 1\r\n   ```", "``` bash \nls\n```", "```\npip install numpy\n```", "```\npython3 x.py\n```",
    "```\nprint(1 + 1)\n```", "```\necho hello\n```", "```\n  pip install x\n```", "```1c\nfoo\n```",
    "```%s\nx\n```" % ("a" * 33), "```Python\nprint(1)\n```", "```c++\nint main(){}\n```",
    "```c++\nint x;\n```\ntext\n```python\nx\n```", "```unknown\nx\n```", "no code", "```python\nprint(1)",
    "```python\n```", None, "", [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "u"}},
                                 {"type": "text", "text": "```python\nprint(2)\n```"}],
    "```js\nconsole.log(1)\n```\n```\nx = (\n```", "text ```python\nprint(3)\n``` more ```bash\necho 4\n```",
]


@unittest.skipUnless(AG2_CODING and AG2_EXTRACTOR, WHY_NO_CODING or WHY_NO_EXTRACTOR)
class AG2TypesAndExtractorTest(unittest.TestCase):
    def test_types_are_ag2s_own(self):
        self.assertTrue(agentexec.AG2_TYPES)
        self.assertIs(AG2_CODING.CodeBlock, agentexec.CodeBlock)
        self.assertIs(AG2_CODING.CommandLineCodeResult, agentexec.CommandLineCodeResult)
        self.assertTrue(issubclass(agentexec.AgentexecCodeResult, AG2_CODING.CommandLineCodeResult))
        block = MarkdownCodeExtractor().extract_code_blocks("```python\nprint(1)\n```")[0]
        self.assertIsInstance(block, AG2_CODING.CodeBlock)

    def test_extraction_equals_ag2s(self):
        ours, theirs = MarkdownCodeExtractor(), AG2_EXTRACTOR()
        for message in MESSAGES:
            self.assertEqual([(b.language, b.code) for b in theirs.extract_code_blocks(message)],
                             [(b.language, b.code) for b in ours.extract_code_blocks(message)], repr(message))


@unittest.skipUnless(URL, "no node: set AGENTEXEC_URL and AGENTEXEC_API_KEY")
@unittest.skipUnless(USER_PROXY and CONVERSABLE, WHY_NO_USER_PROXY)
class UserProxyAgentTest(unittest.TestCase):
    """AG2's UserProxyAgent formats the reply from the executor's result, as in a real chat."""

    def setUp(self):
        self.executor = AgentexecCodeExecutor(URL, KEY, timeout=10)
        self.proxy = USER_PROXY("user_proxy", human_input_mode="NEVER", llm_config=False,
                                code_execution_config={"executor": self.executor})
        self.assistant = CONVERSABLE("assistant", llm_config=False, human_input_mode="NEVER")

    def tearDown(self):
        self.executor.stop()

    def reply(self, proxy, content):
        return proxy.generate_reply(messages=[{"role": "user", "name": "assistant", "content": content}],
                                    sender=self.assistant)

    def test_replies_in_a_chat(self):
        self.assertEqual("exitcode: 0 (execution succeeded)\nCode output: py\nbash 21\nnode 21\n", self.reply(
            self.proxy, "\n".join([fence("python", "open('d.txt', 'w').write('21\\n')\nprint('py')"),
                                   fence("bash", "echo bash $(cat d.txt)"),
                                   fence("javascript", "console.log('node', require('fs').readFileSync('d.txt', "
                                                       "'utf8').trim())")])))
        self.assertEqual("exitcode: 1 (execution failed)\nCode output: ran\n\nunknown language rust", self.reply(
            self.proxy, fence("python", "print('ran')") + "\n" + fence("rust", "fn main() {}")))
        self.assertEqual("exitcode: 1 (execution failed)\nCode output: \nunknown language 1c",
                         self.reply(self.proxy, fence("1c", "foo")))
        self.assertTrue(self.reply(self.proxy, fence("python", "import time\ntime.sleep(30)")).startswith(
            "exitcode: 124 (execution failed)\nCode output: \nTimeout\n[agentexec] timed out after 10 s"))

    @unittest.skipUnless(AG2_LOCAL, WHY_NO_LOCAL)
    def test_same_replies_as_ag2s_local_executor(self):
        with tempfile.TemporaryDirectory() as work_dir:
            local = USER_PROXY("local_proxy", human_input_mode="NEVER", llm_config=False,
                               code_execution_config={"executor": AG2_LOCAL(timeout=10, work_dir=work_dir)})
            for content in [fence("python", "print('ran')") + "\n" + fence("rust", "fn main() {}"),
                            fence("bash", "echo hello") + "\n" + fence("cobol", "x"),
                            fence("python", "open('f.txt', 'w').write('kept')") + "\n" + fence("sh", "cat f.txt"),
                            '```python\nprint("```")\nprint("done")\n```', "```\necho hello\n```",
                            "```\nprint(6 * 7)\n```", fence("a" * 33, "x")]:
                self.assertEqual(self.reply(local, content), self.reply(self.proxy, content), content)


@unittest.skipUnless(URL, "no node: set AGENTEXEC_URL and AGENTEXEC_API_KEY")
@unittest.skipUnless(SANDBOX_TOOL, WHY_NO_AG2_V1)
class AG2v1Test(unittest.TestCase):
    """AG2 1.x: SandboxCodeTool runs the model's run_code call through AgentexecCodeEnvironment."""

    def test_sandbox_code_tool_runs_through_agentexec(self):
        from ag2 import Agent, MemoryStream
        from ag2.events import ModelResponse, ToolCallEvent, ToolCallsEvent, ToolResultEvent
        from ag2.testing import TestConfig

        environment = AgentexecCodeEnvironment(URL, KEY, timeout=10)
        try:
            call = ToolCallEvent(arguments=json.dumps({"code": "print(6 * 7)", "language": "python"}), name="run_code")
            agent = Agent("a", config=TestConfig(ModelResponse(tool_calls=ToolCallsEvent([call])), "done"),
                          tools=[SANDBOX_TOOL(environment)])
            results = []
            stream = MemoryStream()
            stream.where(ToolResultEvent).subscribe(lambda e: results.append(str(e.result)))
            asyncio.run(agent.ask("compute", stream=stream))
            self.assertTrue(results and "42" in results[0], results)
        finally:
            environment.close()


if __name__ == "__main__":
    unittest.main()
