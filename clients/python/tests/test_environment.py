"""AG2 1.x: AgentexecCodeEnvironment as a CodeEnvironment (ag2.tools.code), against a live node."""

import asyncio
import unittest

from agentexec import AgentexecCodeEnvironment, AgentexecCodeExecutor, CodeRunResult

from .support import KEY, URL, live


class EnvironmentShapeTest(unittest.TestCase):
    def test_has_the_code_environment_surface(self):
        environment = AgentexecCodeEnvironment("http://127.0.0.1:9", languages=("python", "bash"))
        self.assertEqual(("python", "bash"), environment.supported_languages)
        self.assertTrue(asyncio.iscoroutinefunction(environment.run))
        self.assertEqual(CodeRunResult(output="x", exit_code=0), CodeRunResult(output="x", exit_code=0))
        with self.assertRaises(ValueError):
            AgentexecCodeEnvironment()


@live
class EnvironmentTest(unittest.TestCase):
    def setUp(self):
        self.environment = AgentexecCodeEnvironment(URL, KEY, timeout=20)

    def tearDown(self):
        self.environment.close()

    def test_runs_code_and_keeps_files_between_runs(self):
        async def session():
            first = await self.environment.run("open('n.txt', 'w').write('41')", "python", context=None)
            second = await self.environment.run("echo $(( $(cat n.txt) + 1 ))", "bash")
            third = await self.environment.run("console.log('node')", "javascript")
            return first, second, third

        first, second, third = asyncio.run(session())
        self.assertIsInstance(first, CodeRunResult)
        self.assertEqual((0, ""), (first.exit_code, first.output))
        self.assertEqual((0, "42\n"), (second.exit_code, second.output))
        self.assertEqual((0, "node\n"), (third.exit_code, third.output))

    def test_failures_and_unknown_languages_are_results(self):
        async def session():
            return (await self.environment.run("import sys; sys.exit(7)", "python"),
                    await self.environment.run("fn main() {}", "rust"))

        failed, unknown = asyncio.run(session())
        self.assertEqual(7, failed.exit_code)
        self.assertEqual((1, "\nunknown language rust"), (unknown.exit_code, unknown.output))

    def test_runs_concurrently_from_one_loop(self):
        async def session():
            return await asyncio.gather(*[self.environment.run("print(%d)" % i, "python") for i in range(3)])

        self.assertEqual(["0\n", "1\n", "2\n"], [r.output for r in asyncio.run(session())])

    def test_wraps_a_given_executor(self):
        executor = AgentexecCodeExecutor(URL, KEY, timeout=1)
        environment = AgentexecCodeEnvironment(executor=executor)
        try:
            result = asyncio.run(environment.run("import time; time.sleep(10)", "python"))
            self.assertEqual(124, result.exit_code)
            self.assertIn("Timeout\n[agentexec] timed out after 1 s", result.output)
        finally:
            environment.close()


if __name__ == "__main__":
    unittest.main()
