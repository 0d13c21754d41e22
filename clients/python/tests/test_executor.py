"""AgentexecCodeExecutor as AG2's code executor, against a live node: each case of issue 13 with AG2's answer.

AG2 0.x's command-line executors (LocalCommandLineCodeExecutor) are the reference: blocks run in order and stop at
the first failure; a block in a language it cannot run adds "\\nunknown language X" with exit code 1 after the
blocks before it ran; a timeout adds "\\nTimeout" with exit code 124; code_file is the file the first block was
saved as. Every verdict other than OK adds one "[agentexec] ..." line in words.
"""

import hashlib
import time
import unittest

from agentexec import (AgentexecClient, AgentexecCodeExecutor, CodeBlock, CodeResult, CommandLineCodeResult,
                       DEFAULT_IMAGE)

from .support import EXPIRING_URL, FORBIDDEN, KEY, URL, eventually, fence, live


def run_message(executor, message):
    """What AG2's UserProxyAgent does with an assistant's message: extract, execute, format the reply."""
    blocks = executor.code_extractor.extract_code_blocks(message)
    result = executor.execute_code_blocks(blocks)
    state = "execution succeeded" if result.exit_code == 0 else "execution failed"
    return result, "exitcode: %s (%s)\nCode output: %s" % (result.exit_code, state, result.output)


@live
class ExecutorTest(unittest.TestCase):
    def setUp(self):
        self.executor = AgentexecCodeExecutor(URL, KEY, timeout=20)

    def tearDown(self):
        self.executor.stop()

    def run_blocks(self, *pairs):
        return self.executor.execute_code_blocks([CodeBlock(code=c, language=l) for l, c in pairs])

    def test_has_ag2s_code_executor_surface_and_types(self):
        for name in ("code_extractor", "execute_code_blocks", "restart"):
            self.assertTrue(hasattr(self.executor, name), name)
        result = self.run_blocks(("python", "print('hi')"))
        self.assertIsInstance(result, CommandLineCodeResult)
        self.assertIsInstance(result, CodeResult)
        self.assertEqual((0, "hi\n", "OK"), (result.exit_code, result.output, result.verdict))

    def test_blocks_run_in_order_and_a_failing_block_stops_the_rest(self):
        result = self.run_blocks(("python", "import sys\nprint('before')\nsys.exit(3)"), ("python", "print('never')"))
        self.assertEqual(3, result.exit_code)
        self.assertIn("before", result.output)
        self.assertNotIn("never", result.output)
        self.assertNotIn("[agentexec]", result.output, "a plain failure is the code's own: no verdict line")

    def test_mixed_languages_share_one_workspace(self):
        reply = run_message(self.executor, "\n".join([
            fence("python", "open('data.txt', 'w').write('21\\n')\nprint('py wrote')"),
            fence("bash", "echo \"bash read $(cat data.txt)\"; echo 2 >> data.txt"),
            fence("javascript", "const fs = require('fs');\n"
                                "const [a, b] = fs.readFileSync('data.txt', 'utf8').trim().split(/\\s+/);\n"
                                "console.log('node says', Number(a) * Number(b));"),
        ]))[1]
        self.assertEqual("exitcode: 0 (execution succeeded)\nCode output: py wrote\nbash read 21\nnode says 42\n", reply)
        self.assertEqual(DEFAULT_IMAGE, self.executor.image, "the polyglot image is allowed and used")

    def test_python_then_an_unknown_language_runs_python_and_blames_the_unknown_block(self):
        result, reply = run_message(self.executor, fence("python", "open('ran.txt','w').write('yes')\nprint('ran')")
                                    + "\n" + fence("rust", "fn main() {}") + "\n" + fence("cobol", "x"))
        self.assertEqual("exitcode: 1 (execution failed)\nCode output: ran\n\nunknown language rust", reply)
        again = self.run_blocks(("bash", "cat ran.txt"))
        self.assertEqual("yes", again.output, "the python block before the unknown one ran")

    def test_bash_then_unknown_and_unknown_first(self):
        self.assertEqual("hello\n\nunknown language rust",
                         self.run_blocks(("bash", "echo hello"), ("rust", "fn main() {}")).output)
        first = self.run_blocks(("cobol", "DISPLAY 'X'."), ("python", "print('never')"))
        self.assertEqual((1, "\nunknown language cobol", None), (first.exit_code, first.output, first.code_file))

    def test_odd_tags_are_unknown_languages_never_exceptions(self):
        for tag in ("1c", "a" * 33, "c#", "Python-3", "x" * 200):
            result = self.run_blocks(("python", "print('first')"), (tag, "code"))
            self.assertEqual(1, result.exit_code, tag)
            self.assertEqual("first\n\nunknown language " + tag.lower(), result.output, tag)
        # an untagged block that is neither shell nor Python: AG2's extractor leaves the language empty
        result, reply = run_message(self.executor, "```\necho hello\n```")
        self.assertEqual("exitcode: 1 (execution failed)\nCode output: \nunknown language ", reply)
        # tags are matched case-insensitively, as AG2 lower-cases them
        self.assertEqual("3\n", self.run_blocks(("PYTHON", "print(3)")).output)

    def test_inner_fence_and_untagged_shell(self):
        result, reply = run_message(self.executor, '```python\nprint("```")\nprint("still python")\n```')
        self.assertEqual("exitcode: 0 (execution succeeded)\nCode output: ```\nstill python\n", reply)
        result, reply = run_message(self.executor, "```\npython3 -c 'print(7 * 6)'\n```")
        self.assertEqual("exitcode: 0 (execution succeeded)\nCode output: 42\n", reply)

    def test_code_file_is_the_first_blocks_file_in_the_workspace(self):
        code = "print('a')"
        result = self.run_blocks(("python", code), ("bash", "echo b"))
        expected = "tmp_code_%s.py" % hashlib.md5(code.encode("utf-8")).hexdigest()
        self.assertEqual(expected, result.code_file)
        self.assertEqual(code.encode("utf-8"), self.executor.client.get_file(self.executor.sandbox_id, result.code_file))
        named = self.run_blocks(("python", "# filename: calc.py\nprint(6 * 7)"))
        self.assertEqual(("calc.py", "42\n"), (named.code_file, named.output))

    def test_files_last_across_turns_and_restart_keeps_them(self):
        self.run_blocks(("python", "open('keep.txt','w').write('kept')"))
        self.assertEqual("kept\n", self.run_blocks(("python", "print(open('keep.txt').read())")).output)
        sandbox = self.executor.sandbox_id
        self.executor.restart()
        after = self.run_blocks(("bash", "cat keep.txt"))
        self.assertEqual((0, "kept"), (after.exit_code, after.output))
        self.assertEqual(sandbox, self.executor.sandbox_id, "AG2's restart keeps the workspace")

    def test_no_process_outlives_a_run(self):
        self.run_blocks(("bash", "nohup sleep 300 >/dev/null 2>&1 &\necho started"))
        # the images have no ps: count the processes named sleep in /proc
        count = self.run_blocks(("python", "import os\nnames = []\nfor pid in filter(str.isdigit, os.listdir('/proc')):\n"
                                           "    try:\n        names.append(open('/proc/%s/comm' % pid).read().strip())\n"
                                           "    except OSError:\n        pass\nprint(names.count('sleep'))"))
        self.assertEqual("0\n", count.output)

    def test_timeout_reads_like_ag2_plus_the_verdict_in_words(self):
        executor = AgentexecCodeExecutor(URL, KEY, timeout=1)
        try:
            result, reply = run_message(executor, fence("python", "import time\nprint('start', flush=True)\n"
                                                                  "time.sleep(30)"))
            self.assertEqual(124, result.exit_code)
            self.assertEqual("TIMEOUT", result.verdict)
            self.assertEqual("exitcode: 124 (execution failed)\nCode output: start\n\nTimeout\n[agentexec] timed out "
                             "after 1 s: the run was stopped and every process it started was killed", reply)
        finally:
            executor.stop()

    def test_output_over_the_cap_is_said_to_be_cut(self):
        executor = AgentexecCodeExecutor(URL, KEY, timeout=30, limits={"outputBytes": 65536})
        try:
            result = executor.execute_code_blocks([CodeBlock(code="print('x' * 2_000_000)", language="python")])
            self.assertEqual("OUTPUT_LIMIT", result.verdict)
            self.assertNotEqual(0, result.exit_code)
            self.assertTrue(result.output.startswith("x" * 65536), result.output[:100])
            self.assertTrue(result.output.endswith(
                "\n[agentexec] output cut at 65536 bytes (stdout and stderr each); the run was killed for printing "
                "more (exit code %d)" % result.exit_code), result.output[-300:])
        finally:
            executor.stop()

    def test_memory_bomb_is_said_to_exceed_its_memory(self):
        executor = AgentexecCodeExecutor(URL, KEY, timeout=60, limits={"memoryMb": 64})
        try:
            result = executor.execute_code_blocks([CodeBlock(
                code="chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))", language="python")])
            self.assertEqual("MEMORY_LIMIT", result.verdict, result.output)
            self.assertEqual(137, result.exit_code)
            self.assertTrue(result.output.endswith(
                "[agentexec] killed for exceeding 64 MB of memory (exit code 137)"), result.output)
        finally:
            executor.stop()

    def test_invalid_utf8_output_does_not_break_the_chat(self):
        result = self.run_blocks(("bash", r"printf 'bad \xff\xfe bytes\n'"))
        self.assertEqual((0, "bad \ufffd\ufffd bytes\n"), (result.exit_code, result.output))

    def test_a_missing_interpreter_is_said(self):
        executor = AgentexecCodeExecutor(URL, KEY, timeout=20, image="agentexec/python:bookworm")
        try:
            result = executor.execute_code_blocks([CodeBlock(code="console.log(1)", language="javascript")])
            self.assertEqual(127, result.exit_code)
            self.assertIn("[agentexec] interpreter missing: cannot start node", result.output)
            self.assertIn("agentexec/python:bookworm", result.output)
        finally:
            executor.stop()

    def test_a_refusal_names_the_rule(self):
        escape = self.run_blocks(("python", "# filename: ../outside.py\nprint(1)"))
        self.assertEqual(("POLICY_VIOLATION", 1), (escape.verdict, escape.exit_code))
        self.assertIn("[agentexec] refused by policy: file name leaves the workspace through '..'", escape.output)
        self.assertEqual(1, escape.output.count("leaves the workspace"), "the reason is said once")
        if FORBIDDEN:
            refused = self.run_blocks(("python", "print('%s')" % FORBIDDEN))
            self.assertIn("[agentexec] refused by policy: Potentially unsafe code detected: " + FORBIDDEN,
                          refused.output)

    def test_a_removed_sandbox_is_said_lost_and_replaced(self):
        self.run_blocks(("python", "open('keep.txt','w').write('kept')"))
        gone = self.executor.sandbox_id
        AgentexecClient(URL, KEY).delete_sandbox(gone)
        result, reply = run_message(self.executor, fence("bash", "cat keep.txt"))
        self.assertNotEqual(gone, self.executor.sandbox_id)
        self.assertTrue(reply.startswith(
            "exitcode: 1 (execution failed)\nCode output: [agentexec] the workspace was lost (sandbox %s no longer "
            "exists (expired idle or removed)): files written in earlier turns are gone; this ran in a fresh sandbox\n"
            % gone), reply)
        self.assertIn("No such file", reply)
        self.assertNotIn("[agentexec]", self.run_blocks(("bash", "true")).output, "said once")

    def test_no_blocks(self):
        self.assertEqual((0, ""), (self.executor.execute_code_blocks([]).exit_code, ""))


@unittest.skipUnless(EXPIRING_URL, "no node whose sandboxes expire: set AGENTEXEC_EXPIRING_URL (PythonClientTest does)")
class IdleLossTest(unittest.TestCase):
    def test_a_sandbox_reaped_idle_is_said_lost(self):
        executor = AgentexecCodeExecutor(EXPIRING_URL, KEY, timeout=20)
        try:
            executor.execute_code_blocks([CodeBlock(code="open('keep.txt','w').write('kept')", language="python")])
            expired = eventually(lambda: executor.client.get_sandbox(executor.sandbox_id)["status"] == "expired")
            self.assertTrue(expired, "the idle sandbox expires")
            result, reply = run_message(executor, fence("bash", "cat keep.txt"))
            self.assertTrue(reply.startswith("exitcode: 1 (execution failed)\nCode output: [agentexec] the workspace "
                                             "was lost ("), reply)
            self.assertIn("files written in earlier turns are gone; this ran in a fresh sandbox\n", reply)
            self.assertIn("No such file", reply)
        finally:
            executor.stop()


if __name__ == "__main__":
    unittest.main()
