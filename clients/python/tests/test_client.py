"""The plain API against a live gateway: AGENTEXEC_URL and AGENTEXEC_API_KEY (and AGENTEXEC_OTHER_API_KEY, another
tenant). Driven by modules/gateway's PythonClientTest, which starts a node first."""

import unittest

from agentexec import AgentexecClient, AgentexecError

from .support import KEY, OTHER, URL, eventually, live


@live
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


if __name__ == "__main__":
    unittest.main()


@live
class ExecutorOptionsTest(unittest.TestCase):
    """The seed's executors as keyword arguments of execute(), and the tenant's statistics."""

    def setUp(self):
        self.client = AgentexecClient(URL, KEY)

    def test_policy_retries_profile_cache_tests_and_stats(self):
        import uuid
        name = "py-" + uuid.uuid4().hex[:8]
        refused = self.client.execute("python", "import socket", policy="secure", executor=name)
        self.assertEqual("POLICY_VIOLATION", refused["verdict"])
        self.assertEqual("Network access not allowed: socket", refused["message"])

        retried = self.client.execute("bash", "exit 5", retries=2, executor=name)
        self.assertEqual(2, len(retried["attempts"]))

        profiled = self.client.execute("python", "print(1)", profile="complex")
        self.assertEqual("complex", profiled["profile"])
        self.assertTrue(any("held at the ceiling" in n for n in profiled["notes"]), profiled["notes"])

        code = "import random\nprint(random.random(), %r)" % name
        first = self.client.execute("python", code, cache=True)
        again = self.client.execute("python", code, cache=True)
        self.assertFalse(first["cached"])
        self.assertTrue(again["cached"])
        self.assertTrue(again["output"].startswith("[CACHED RESULT]\n"))

        tested = self.client.execute("python", "print(int(input()) + 1)", tests=[("1", "2"), ("2", "4")],
                                     executor=name)
        self.assertEqual(["PASS", "FAIL"], [c["status"] for c in tested["tests"]["cases"]])

        stats = eventually(lambda: (lambda s: s if s["overall"]["count"] >= 4 else None)(self.client.stats(name)), 30)
        self.assertIsNotNone(stats, "the refusal, the retried run and two test cases are counted")
        self.assertIn(name, stats["byExecutor"])

        with self.assertRaises(AgentexecError) as bad:
            self.client.execute("python", "1", retries=0)
        self.assertEqual(400, bad.exception.status)
        self.assertIn("retries", bad.exception.message)

    def test_a_sandbox_created_with_executor_options_applies_them_to_its_runs(self):
        sandbox = self.client.create_sandbox("python", policy="secure", retries=2)
        try:
            self.assertEqual({"policy": "secure", "retries": 2}, sandbox["defaults"])
            self.assertEqual(sandbox["defaults"], self.client.get_sandbox(sandbox["id"])["defaults"])
            refused = self.client.execute("python", "import os", sandbox_id=sandbox["id"])
            self.assertEqual("POLICY_VIOLATION", refused["verdict"], refused)
            retried = self.client.execute("python", "raise SystemExit(3)", sandbox_id=sandbox["id"])
            self.assertEqual(2, len(retried["attempts"]), retried)
            own = self.client.execute("python", "import os\nprint('ran')", sandbox_id=sandbox["id"], policy=["rm -rf"])
            self.assertEqual("ran\n", own["stdout"], "the run's own policy wins")
        finally:
            self.client.delete_sandbox(sandbox["id"])
        with self.assertRaises(AgentexecError) as bad:
            self.client.create_sandbox("python", retries=0)
        self.assertEqual(400, bad.exception.status)
        self.assertIn("retries", bad.exception.message)
