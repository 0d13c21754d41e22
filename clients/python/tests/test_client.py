"""Runs against a live gateway: AGENTEXEC_URL and AGENTEXEC_API_KEY (and AGENTEXEC_OTHER_API_KEY, another tenant).
Driven by modules/gateway's PythonClientTest, which starts a node first."""

import os
import types
import unittest

from agentexec import AgentexecClient, AgentexecCodeExecutor, AgentexecError, CodeBlock

URL = os.environ.get("AGENTEXEC_URL", "http://127.0.0.1:8080")
KEY = os.environ.get("AGENTEXEC_API_KEY")
OTHER = os.environ.get("AGENTEXEC_OTHER_API_KEY")


class ClientTest(unittest.TestCase):
    def setUp(self):
        self.client = AgentexecClient(URL, KEY)

    def test_execute_returns_the_engines_result(self):
        result = self.client.execute("python", "print(6 * 7)")
        self.assertEqual("OK", result["verdict"])
        self.assertEqual(0, result["exitCode"])
        self.assertEqual("42\n", result["stdout"])

    def test_files_in_and_out_of_a_sandbox(self):
        sandbox = self.client.create_sandbox("python")
        try:
            self.client.put_file(sandbox["id"], "in/x.txt", "21")
            run = self.client.execute("python", "open('y.txt','w').write(str(2*int(open('in/x.txt').read())))",
                                      sandbox_id=sandbox["id"])
            self.assertEqual("OK", run["verdict"], run)
            self.assertEqual(b"42", self.client.get_file(sandbox["id"], "y.txt"))
        finally:
            self.client.delete_sandbox(sandbox["id"])

    def test_errors_carry_status_and_code(self):
        with self.assertRaises(AgentexecError) as bad:
            self.client.execute("/bin/sh", "id")
        self.assertEqual(400, bad.exception.status)
        self.assertEqual("invalid_request", bad.exception.code)
        with self.assertRaises(AgentexecError) as unauth:
            AgentexecClient(URL, "wrong-key").execute("python", "print(1)")
        self.assertEqual(401, unauth.exception.status)

    @unittest.skipUnless(OTHER, "needs a second tenant's key")
    def test_another_tenant_cannot_use_my_sandbox(self):
        sandbox = self.client.create_sandbox("bash")
        try:
            with self.assertRaises(AgentexecError) as other:
                AgentexecClient(URL, OTHER).execute("bash", "true", sandbox_id=sandbox["id"])
            self.assertEqual(404, other.exception.status)
        finally:
            self.client.delete_sandbox(sandbox["id"])


class CodeExecutorProtocolTest(unittest.TestCase):
    def setUp(self):
        self.executor = AgentexecCodeExecutor(URL, KEY, timeout=20)

    def tearDown(self):
        self.executor.close()

    def test_has_ag2s_code_executor_surface(self):
        for name in ("code_extractor", "execute_code_blocks", "restart"):
            self.assertTrue(hasattr(self.executor, name), name)
        blocks = self.executor.code_extractor.extract_code_blocks(
            "Run this:\n```python\nprint('hi')\n```\nand\n```sh\necho there\n```\n")
        self.assertEqual([("python", "print('hi')\n"), ("sh", "echo there\n")], [(b.language, b.code) for b in blocks])

    def test_blocks_run_in_order_and_return_exit_code_and_output(self):
        result = self.executor.execute_code_blocks([
            CodeBlock(code="print('one')", language="python"),
            types.SimpleNamespace(code="echo two", language="bash"),
        ])
        self.assertEqual(0, result.exit_code)
        self.assertEqual("one\ntwo\n", result.output)

    def test_a_failing_block_stops_the_rest(self):
        result = self.executor.execute_code_blocks([
            CodeBlock(code="import sys\nprint('before')\nsys.exit(3)", language="python"),
            CodeBlock(code="print('never')", language="python"),
        ])
        self.assertEqual(3, result.exit_code)
        self.assertIn("before", result.output)
        self.assertNotIn("never", result.output)

    def test_unknown_language_is_ag2s_answer(self):
        result = self.executor.execute_code_blocks([CodeBlock(code="x", language="cobol")])
        self.assertEqual(1, result.exit_code)
        self.assertEqual("unknown language cobol", result.output)

    def test_workspace_lasts_until_restart(self):
        self.executor.execute_code_blocks([CodeBlock(code="open('keep.txt','w').write('kept')", language="python")])
        again = self.executor.execute_code_blocks([CodeBlock(code="print(open('keep.txt').read())", language="python")])
        self.assertEqual("kept\n", again.output)
        self.executor.restart()
        gone = self.executor.execute_code_blocks([CodeBlock(code="cat keep.txt", language="bash")])
        self.assertNotEqual(0, gone.exit_code)

    def test_timeout_reads_like_ag2(self):
        executor = AgentexecCodeExecutor(URL, KEY, timeout=1)
        try:
            result = executor.execute_code_blocks([CodeBlock(code="import time\ntime.sleep(20)", language="python")])
            self.assertEqual(124, result.exit_code)
            self.assertTrue(result.output.endswith("Timeout"), result.output)
        finally:
            executor.close()


if __name__ == "__main__":
    unittest.main()
