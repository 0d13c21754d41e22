package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.agentexec.gateway.TestNode.Reply;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The seed's executors (policy, retries, profile, cache, tests) on POST /v1/executions and a sandbox's executions, and
 * GET /v1/stats, over real HTTP on 127.0.0.1 against a real engine and Docker.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ExecutorsHttpTest {
    private TestNode node;

    @BeforeAll
    void start() throws Exception {
        node = TestNode.start("engine", Map.of());
    }

    @AfterAll
    void stop() {
        if (node != null) {
            node.close();
        }
    }

    private Reply run(String key, String body) {
        return node.post("/v1/executions", key, body);
    }

    @Test
    void theSecurePolicyRefusesWithTheSeedsWordsAndRunsNothing() {
        Reply unsafe = run(TestNode.ALICE, "{\"language\":\"python\",\"code\":\"import os\\nprint(os.getcwd())\",\"policy\":\"secure\"}");
        assertEquals(200, unsafe.status(), unsafe.body());
        JsonNode j = unsafe.json();
        assertEquals("POLICY_VIOLATION", j.get("verdict").asText(), unsafe.body());
        assertEquals("Potentially unsafe code detected: import os", j.get("message").asText());
        assertEquals("import os", j.get("violation").get("pattern").asText());
        assertEquals("secure", j.get("violation").get("policy").asText());
        assertEquals("", j.get("stdout").asText(), "nothing ran");

        Reply network = run(TestNode.ALICE, "{\"language\":\"python\",\"code\":\"import socket\",\"policy\":\"secure\"}");
        assertEquals("Network access not allowed: socket", network.json().get("message").asText(), network.body());

        Reply own = run(TestNode.ALICE, "{\"language\":\"bash\",\"code\":\"rm -rf x\",\"policy\":[\"rm -rf\"]}");
        assertEquals("POLICY_VIOLATION", own.json().get("verdict").asText(), own.body());
        assertEquals("Potentially unsafe code detected: rm -rf", own.json().get("message").asText());

        Reply clean = run(TestNode.ALICE, "{\"language\":\"python\",\"code\":\"print(6*7)\",\"policy\":\"secure\"}");
        assertEquals("OK", clean.json().get("verdict").asText(), clean.body());
        assertEquals("42\n", clean.json().get("stdout").asText());
    }

    @Test
    void retriesRunAFailingRunAgainAndReturnTheHistory() {
        Reply sandbox = node.post("/v1/sandboxes", TestNode.ALICE, "{\"language\":\"python\"}");
        assertEquals(201, sandbox.status(), sandbox.body());
        String id = sandbox.json().get("id").asText();
        try {
            // fails on its first run, succeeds on its second: the workspace keeps the counter between attempts
            String flaky = "import os.path\\nn = int(open('n').read()) if os.path.exists('n') else 0\\n"
                    + "open('n', 'w').write(str(n + 1))\\nprint('attempt', n + 1)\\nraise SystemExit(0 if n >= 1 else 3)";
            Reply r = node.post("/v1/sandboxes/" + id + "/executions", TestNode.ALICE,
                    "{\"language\":\"python\",\"code\":\"" + flaky + "\",\"retries\":3}");
            assertEquals(200, r.status(), r.body());
            JsonNode j = r.json();
            assertEquals("OK", j.get("verdict").asText(), r.body());
            assertEquals("attempt 2\n", j.get("stdout").asText());
            assertEquals(2, j.get("attempts").size(), r.body());
            assertEquals("RUNTIME_ERROR", j.get("attempts").get(0).get("outcome").asText());
            assertFalse(j.get("attempts").get(0).get("success").asBoolean());
            assertTrue(j.get("attempts").get(1).get("success").asBoolean());
            String firstId = j.get("attempts").get(0).get("executionId").asText();
            assertNotEquals(firstId, j.get("attempts").get(1).get("executionId").asText());
            // each attempt is a run of its own, readable by its id
            Reply first = node.get("/v1/executions/" + firstId, TestNode.ALICE);
            assertEquals(200, first.status(), first.body());
            assertEquals("RUNTIME_ERROR", first.json().get("result").get("verdict").asText());
        } finally {
            node.delete("/v1/sandboxes/" + id, TestNode.ALICE);
        }

        Reply always = run(TestNode.ALICE, "{\"language\":\"bash\",\"code\":\"exit 4\",\"retries\":3}");
        assertEquals("RUNTIME_ERROR", always.json().get("verdict").asText(), always.body());
        assertEquals(3, always.json().get("attempts").size(), "every attempt made and recorded");
    }

    @Test
    void aProfileSetsTheLimitsAndSaysWhatTheCeilingHeld() {
        Reply simple = run(TestNode.ALICE, "{\"language\":\"bash\",\"code\":\"cat /sys/fs/cgroup/memory.max 2>/dev/null "
                + "|| cat /sys/fs/cgroup/memory/memory.limit_in_bytes\",\"profile\":\"simple\"}");
        assertEquals(200, simple.status(), simple.body());
        assertEquals("OK", simple.json().get("verdict").asText(), simple.body());
        assertEquals(String.valueOf(256L * 1024 * 1024), simple.json().get("stdout").asText().trim(),
                "the seed's simple profile: 256m");

        Reply complex = run(TestNode.ALICE, "{\"language\":\"python\",\"code\":\"print(1)\",\"profile\":\"complex\"}");
        assertEquals(200, complex.status(), complex.body());
        JsonNode j = complex.json();
        assertEquals("complex", j.get("profile").asText());
        assertTrue(j.get("notes").size() >= 1, complex.body());
        String notes = j.get("notes").toString();
        assertTrue(notes.contains("profile complex") && notes.contains("timeout") && notes.contains("held at the ceiling"),
                notes);
        assertTrue(j.get("message").asText().contains("profile complex"), "the result's message says it too");

        Reply unknown = run(TestNode.ALICE, "{\"language\":\"python\",\"code\":\"1\",\"profile\":\"gpu\"}");
        assertEquals(400, unknown.status());
        assertTrue(unknown.body().contains("simple") && unknown.body().contains("datascience"), unknown.body());
    }

    @Test
    void theCacheAnswersAnIdenticalRequestOfTheSameTenantOnly() {
        String code = "import random\\nprint(random.random(), '" + UUID.randomUUID() + "')";
        String body = "{\"language\":\"python\",\"code\":\"" + code + "\",\"cache\":true}";
        Reply first = run(TestNode.ALICE, body);
        assertEquals(200, first.status(), first.body());
        assertFalse(first.json().get("cached").asBoolean());
        Reply second = run(TestNode.ALICE, body);
        assertTrue(second.json().get("cached").asBoolean(), second.body());
        assertEquals(first.json().get("stdout").asText(), second.json().get("stdout").asText());
        assertTrue(second.json().get("output").asText().startsWith("[CACHED RESULT]\n"));
        assertTrue(second.json().get("ag2Reply").asText().startsWith("[CACHED RESULT]\n"));

        Reply otherTenant = run(TestNode.BOB, body);
        assertFalse(otherTenant.json().get("cached").asBoolean(), "another tenant's cache is its own");
        Reply uncached = run(TestNode.ALICE, "{\"language\":\"python\",\"code\":\"" + code + "\"}");
        assertFalse(uncached.json().has("cached"), "off by default: a plain run");
        assertNotEquals(first.json().get("stdout").asText(), uncached.json().get("stdout").asText());
    }

    @Test
    void testsReportEachCase() {
        Reply r = run(TestNode.ALICE, """
                {"language": "python", "code": "print(int(input()) * 2)",
                 "tests": [{"stdin": "2", "expectedStdout": "4"}, {"stdin": "5", "expectedStdout": "10\\n"},
                           {"stdin": "3", "expectedStdout": "7"}]}
                """);
        assertEquals(200, r.status(), r.body());
        JsonNode t = r.json().get("tests");
        assertEquals(2, t.get("passed").asInt(), r.body());
        assertEquals(1, t.get("failed").asInt());
        assertEquals("PASS", t.get("cases").get(0).get("status").asText());
        assertEquals("FAIL", t.get("cases").get(2).get("status").asText());
        assertEquals("6\n", t.get("cases").get(2).get("actualStdout").asText());

        Reply seed = run(TestNode.ALICE, """
                {"language": "python", "code": "def add(a, b):\\n    return a + b",
                 "tests": ["test_results.append(add(1, 2) == 3)", "test_results.append(add(2, 2) == 5)"]}
                """);
        assertEquals(200, seed.status(), seed.body());
        JsonNode s = seed.json().get("tests");
        assertEquals("PASS", s.get("cases").get(0).get("status").asText(), seed.body());
        assertEquals("FAIL", s.get("cases").get(1).get("status").asText());
    }

    @Test
    void statsCountTheTenantsRunsByExecutorAndProfile() {
        String executor = "stats-" + UUID.randomUUID().toString().substring(0, 8);
        run(TestNode.CAROL, "{\"language\":\"python\",\"code\":\"print(1)\",\"executor\":\"" + executor + "\",\"profile\":\"simple\"}");
        run(TestNode.CAROL, "{\"language\":\"bash\",\"code\":\"exit 1\",\"executor\":\"" + executor + "\",\"profile\":\"simple\"}");
        run(TestNode.CAROL, "{\"language\":\"python\",\"code\":\"import time\\ntime.sleep(30)\",\"limits\":{\"timeoutSeconds\":1}}");
        JsonNode stats = waitForCount(TestNode.CAROL, 3);
        JsonNode mine = stats.get("byExecutor").get(executor);
        assertEquals(2, mine.get("count").asInt(), stats.toString());
        assertEquals(0.5, mine.get("successRate").asDouble(), 1e-9);
        assertEquals(256L * 1024 * 1024, mine.get("memoryLimitsBytes").get(0).asLong());
        assertTrue(stats.get("byProfile").has("simple"), stats.toString());
        assertEquals(1, stats.get("overall").get("timeouts").asInt(), stats.toString());
        assertTrue(stats.get("overall").get("p95Ms").asLong() >= stats.get("overall").get("p50Ms").asLong());

        Reply metrics = node.metrics();
        assertTrue(metrics.body().contains("agentexec_executor_runs_total{source=\"http\",profile=\"simple\",verdict=\"OK\""),
                "the runs are in Prometheus too:\n" + metrics.body());

        Reply one = node.get("/v1/stats?executor=" + executor, TestNode.CAROL);
        assertEquals(2, one.json().get("overall").get("count").asInt(), one.body());
        Reply other = node.get("/v1/stats", TestNode.DAVE);
        assertEquals(200, other.status(), other.body());
        assertFalse(other.json().get("byExecutor").has(executor), "another tenant's statistics are its own");
    }

    /** The statistics are written as each run ends: poll (bounded) until they hold at least {@code count} runs. */
    private JsonNode waitForCount(String key, int count) {
        long deadline = System.nanoTime() + 30_000_000_000L;
        JsonNode last = null;
        while (System.nanoTime() < deadline) {
            Reply r = node.get("/v1/stats", key);
            assertEquals(200, r.status(), r.body());
            last = r.json();
            if (last.get("overall").get("count").asInt() >= count) {
                return last;
            }
            try {
                Thread.sleep(100);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        throw new AssertionError("statistics never reached " + count + " runs: " + last);
    }

    @Test
    void aSandboxCreatedWithExecutorOptionsAppliesThemToEachRunUnlessTheRunSaysOtherwise() {
        Reply sandbox = node.post("/v1/sandboxes", TestNode.ALICE,
                "{\"language\":\"python\",\"policy\":[\"open(\"],\"cache\":true,\"executor\":\"notebook\"}");
        assertEquals(201, sandbox.status(), sandbox.body());
        String id = sandbox.json().get("id").asText();
        String runs = "/v1/sandboxes/" + id + "/executions";
        try {
            JsonNode defaults = sandbox.json().get("defaults");
            assertEquals("open(", defaults.get("policy").get(0).asText(), sandbox.body());
            assertTrue(defaults.get("cache").asBoolean());
            assertEquals(defaults, node.get("/v1/sandboxes/" + id, TestNode.ALICE).json().get("defaults"));

            Reply refused = node.post(runs, TestNode.ALICE, "{\"language\":\"python\",\"code\":\"open('x', 'w')\"}");
            assertEquals("POLICY_VIOLATION", refused.json().get("verdict").asText(), refused.body());
            assertEquals("Potentially unsafe code detected: open(", refused.json().get("message").asText());

            String code = "import random\\nprint(random.random())";
            Reply first = node.post(runs, TestNode.ALICE, "{\"language\":\"python\",\"code\":\"" + code + "\"}");
            Reply second = node.post(runs, TestNode.ALICE, "{\"language\":\"python\",\"code\":\"" + code + "\"}");
            assertTrue(second.json().get("cached").asBoolean(), "the sandbox's cache: " + second.body());
            assertEquals(first.json().get("stdout").asText(), second.json().get("stdout").asText());
            Reply fresh = node.post(runs, TestNode.ALICE, "{\"language\":\"python\",\"code\":\"" + code
                    + "\",\"cache\":false}");
            assertFalse(fresh.json().path("cached").asBoolean(), "the run's own cache: false wins: " + fresh.body());

            // counted under the sandbox's executor name (statistics are recorded just after the answer)
            io.agentexec.testkit.Await.until("the sandbox's runs counted under its executor name", () ->
                    node.get("/v1/stats", TestNode.ALICE).json().path("byExecutor").path("notebook").path("count").asInt() >= 3);
        } finally {
            node.delete("/v1/sandboxes/" + id, TestNode.ALICE);
        }
        Reply plain = node.post("/v1/sandboxes", TestNode.ALICE, "{\"language\":\"python\"}");
        try {
            assertEquals(0, plain.json().get("defaults").size(), "none given, none kept: " + plain.body());
            Reply ran = node.post("/v1/sandboxes/" + plain.json().get("id").asText() + "/executions", TestNode.ALICE,
                    "{\"language\":\"python\",\"code\":\"open('x.txt', 'w').write('1')\\nprint('ok')\"}");
            assertEquals("OK", ran.json().get("verdict").asText(), "another sandbox takes no one's defaults: " + ran.body());
        } finally {
            node.delete("/v1/sandboxes/" + plain.json().get("id").asText(), TestNode.ALICE);
        }
    }

    @Test
    void badExecutorOptionsOfASandboxAreRefusedNamingTheField() {
        String[][] cases = {
                {"{\"language\":\"python\",\"retries\":0}", "retries"},
                {"{\"language\":\"python\",\"retries\":99}", "max-retries"},
                {"{\"language\":\"python\",\"policy\":\"paranoid\"}", "unknown policy 'paranoid'"},
                {"{\"language\":\"python\",\"policy\":[\"\"]}", "policy"},
                {"{\"language\":\"python\",\"cache\":1}", "'cache'"},
                {"{\"language\":\"python\",\"executor\":\"a b\"}", "executor"},
                {"{\"language\":\"python\",\"tests\":[{\"expectedStdout\":\"1\"}]}", "tests: a sandbox cannot hold"},
        };
        for (String[] c : cases) {
            Reply r = node.post("/v1/sandboxes", TestNode.ALICE, c[0]);
            assertEquals(400, r.status(), c[0] + " -> " + r.body());
            assertTrue(r.body().contains(c[1]), c[0] + " -> " + r.body());
        }
    }

    @Test
    void badExecutorOptionsAreRefusedNamingTheField() {
        String[][] cases = {
                {"{\"language\":\"python\",\"code\":\"1\",\"retries\":0}", "retries"},
                {"{\"language\":\"python\",\"code\":\"1\",\"retries\":99}", "max-retries"},
                {"{\"language\":\"python\",\"code\":\"1\",\"retries\":\"3\"}", "'retries'"},
                {"{\"language\":\"python\",\"code\":\"1\",\"policy\":\"paranoid\"}", "unknown policy 'paranoid'"},
                {"{\"language\":\"python\",\"code\":\"1\",\"policy\":[]}", "policy"},
                {"{\"language\":\"python\",\"code\":\"1\",\"cache\":\"yes\"}", "'cache'"},
                {"{\"language\":\"python\",\"code\":\"1\",\"tests\":[]}", "'tests'"},
                {"{\"language\":\"python\",\"code\":\"1\",\"tests\":[{\"stdin\":\"1\"}]}", "expectedStdout"},
                {"{\"language\":\"bash\",\"code\":\"1\",\"tests\":[\"test_results.append(True)\"]}", "python"},
        };
        for (String[] c : cases) {
            Reply r = run(TestNode.ALICE, c[0]);
            assertEquals(400, r.status(), c[0] + " -> " + r.body());
            assertTrue(r.body().contains(c[1]), c[0] + " -> " + r.body());
        }
        Reply async = node.post("/v1/executions?async=true", TestNode.ALICE,
                "{\"language\":\"python\",\"code\":\"1\",\"retries\":2}");
        assertEquals(400, async.status(), async.body());
        assertTrue(async.body().contains("async"), async.body());
    }
}
