package io.agentexec.cluster;

import static io.agentexec.cluster.TestNodes.await;
import static io.agentexec.cluster.TestNodes.completed;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.executors.CodePolicy;
import io.agentexec.cluster.executors.ExecutorOptions;
import io.agentexec.cluster.executors.ExecutorOutcome;
import io.agentexec.cluster.executors.ExecutorProfiles;
import io.agentexec.cluster.executors.PortRunner;
import io.agentexec.cluster.executors.SeedExecutors;
import io.agentexec.cluster.executors.StatsReport;
import io.agentexec.cluster.executors.TestReport;
import io.agentexec.cluster.executors.TestSuite;
import io.agentexec.cluster.port.Caller;
import io.agentexec.cluster.port.ClusterPort;
import io.agentexec.cluster.port.ExecutionIds;
import io.agentexec.cluster.port.quota.LocalSandboxQuota;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletionException;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The seed's executors over the execution port, as every caller uses them: the code policy, retries with their
 * history, profiles under the ceilings, the tenant-scoped cache and statistics in the journal (surviving a restart of
 * the node), and tests in both styles. One node, journal in an H2 file, real Docker.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SeedExecutorsTest {
    private Path data;
    private AgentexecCluster node;
    private ClusterPort port;
    private SeedExecutors executors;
    private Limits limits;
    private String config;

    @BeforeAll
    void start() throws Exception {
        data = Files.createTempDirectory("agentexec-executors");
        config = TestNodes.common(TestNodes.freePort(), List.of(), "gateway,worker") + TestNodes.h2(data) + """
                # the operator's default ceiling (common() raises it for tests that hold runs open)
                agentexec.policy.max-limits.timeout = 300s
                # an operator-defined profile beside the seed's
                agentexec.executors.profiles.quick { timeout = 2s, memory = 128m }
                """;
        open();
    }

    private void open() {
        node = TestNodes.start(config);
        EngineSettings engine = EngineSettings.fromConfig(TestNodes.config(config));
        port = new ClusterPort(node, engine.languages(), Duration.ofSeconds(30), new LocalSandboxQuota(),
                Duration.ofMillis(5), Duration.ofMillis(200));
        executors = SeedExecutors.cluster(node, TestNodes.config(config));
        limits = node.engine().orElseThrow().defaultLimits().withTimeout(Duration.ofSeconds(20));
        TestNodes.awaitWorkers(node, 1);
    }

    @AfterAll
    void stop() {
        if (node != null) {
            port.close();
            node.close();
        }
    }

    private static Caller tenant(AgentexecCluster node, String name) {
        return Caller.tenant(name, node.policy().policy(), 8);
    }

    private ExecutorOutcome run(Caller caller, Optional<String> sandbox, ExecutionRequest request, ExecutorOptions options) {
        return run(caller, sandbox, request, options, List.of());
    }

    private ExecutorOutcome run(Caller caller, Optional<String> sandbox, ExecutionRequest request, ExecutorOptions options,
                                List<String> notes) {
        String id = ExecutionIds.newId(Instant.now(), sandbox);
        SeedExecutors.Call call = new SeedExecutors.Call(caller, id, request, options,
                sandbox.map(s -> "sandbox:" + s).orElse("one-off"), "java", notes);
        return await(executors.run(call, new PortRunner(port, caller, sandbox, id, n -> OutputListener.NONE)));
    }

    private ExecutionRequest python(String code) {
        return ExecutionRequest.of("python", code, limits);
    }

    @Test
    void secureRefusesTheSeedsPatternsWithTheSeedsWordsAndRunsNothing() {
        Caller caller = tenant(node, "secure-tenant");
        ExecutorOptions secure = ExecutorOptions.none().withPolicy(executors.policy("secure")).withExecutor("secure_executor");
        ExecutorOutcome os = run(caller, Optional.empty(), python("import os\nprint(os.listdir('/'))"), secure);
        ExecutionOutcome.Completed refused = completed(os.outcome());
        assertEquals(Verdict.POLICY_VIOLATION, refused.result().verdict());
        assertEquals("Potentially unsafe code detected: import os", refused.result().message());
        assertEquals("exitcode: 1 (execution failed)\nCode output: Potentially unsafe code detected: import os",
                refused.result().ag2Reply());
        assertEquals("secure", os.violation().orElseThrow().policy());
        assertTrue(os.attempts().isEmpty(), "nothing ran");

        ExecutorOutcome net = run(caller, Optional.empty(), python("import requests\nrequests.get('http://x')"), secure);
        assertEquals("Network access not allowed: requests", completed(net.outcome()).result().message());
        ExecutorOutcome fromHttp = run(caller, Optional.empty(), python("from http import client"), secure);
        assertEquals("Network access not allowed: http", completed(fromHttp.outcome()).result().message());

        ExecutorOutcome own = run(caller, Optional.empty(), python("print(eval('1+1'))"),
                ExecutorOptions.none().withPolicy(CodePolicy.patterns(List.of("eval("))));
        assertEquals("Potentially unsafe code detected: eval(", completed(own.outcome()).result().message());

        ExecutorOutcome fine = run(caller, Optional.empty(), python("print(sum(range(10)))"), secure);
        assertEquals("45\n", completed(fine.outcome()).result().stdout());
        InvalidRequestException unknown = assertThrows(InvalidRequestException.class, () -> executors.policy("paranoid"));
        assertTrue(unknown.getMessage().contains("policy: unknown policy 'paranoid'; known: secure"), unknown.getMessage());
    }

    @Test
    void retriesRunAFailingRunAgainAndKeepTheHistory() {
        Caller caller = tenant(node, "robust-tenant");
        String sandbox = "flaky-" + System.nanoTime();
        await(port.createSandbox(caller, sandbox, SandboxSpec.of("python", limits)));
        // fails twice, then succeeds: the workspace counts the attempts
        String flaky = """
                import os.path
                n = int(open('n').read()) + 1 if os.path.exists('n') else 1
                open('n', 'w').write(str(n))
                print('attempt', n)
                raise SystemExit(0 if n >= 3 else 1)
                """;
        ExecutorOutcome robust = run(caller, Optional.of(sandbox), python(flaky), ExecutorOptions.none().withRetries(3));
        assertEquals(Verdict.OK, completed(robust.outcome()).result().verdict());
        assertEquals(List.of("RUNTIME_ERROR", "RUNTIME_ERROR", "OK"),
                robust.attempts().stream().map(a -> a.outcome()).toList());
        assertEquals(List.of(1, 2, 3), robust.attempts().stream().map(a -> a.attempt()).toList());
        assertEquals(3, robust.attempts().stream().map(a -> a.executionId()).distinct().count(), "each attempt its own id");
        assertTrue(robust.attempts().stream().allMatch(a -> ExecutionIds.sandboxOf(a.executionId()).equals(Optional.of(sandbox))));
        // each attempt is a run of the sandbox's, readable by its id
        assertTrue(await(port.lookup(caller, robust.attempts().get(0).executionId())).isPresent());

        ExecutorOutcome hopeless = run(caller, Optional.empty(), python("raise SystemExit(4)"),
                ExecutorOptions.none().withRetries(2));
        assertEquals(2, hopeless.attempts().size());
        assertEquals(4, completed(hopeless.outcome()).result().exitCode());

        ExecutorOutcome refusedOnce = run(caller, Optional.empty(), python("import os"),
                ExecutorOptions.none().withRetries(3).withPolicy(executors.policy("secure")));
        assertTrue(refusedOnce.attempts().isEmpty(), "a policy refusal is never retried");

        CompletionException tooMany = assertThrows(CompletionException.class, () -> executors.run(
                new SeedExecutors.Call(caller, "x", python("print(1)"), ExecutorOptions.none().withRetries(50), "one-off",
                        "java", List.of()), new PortRunner(port, caller, Optional.empty(), "x", n -> OutputListener.NONE))
                .toCompletableFuture().join());
        assertTrue(tooMany.getCause().getMessage().startsWith("retries: at most 5 attempts"), tooMany.getCause().getMessage());
    }

    @Test
    void profilesAreTheSeedsAndTheGatewaysHeldUnderTheCeilings() {
        Caller caller = tenant(node, "optimized-tenant");
        ExecutorProfiles.Applied simple = executors.applyProfile("simple", limits, caller.policy());
        assertEquals(256L * 1024 * 1024, simple.limits().memoryBytes());
        assertEquals(0.5, simple.limits().cpus());
        assertEquals(Duration.ofSeconds(30), simple.limits().timeout());
        assertTrue(simple.notes().isEmpty());

        ExecutorProfiles.Applied complex = executors.applyProfile("complex", limits, caller.policy());
        assertEquals(Duration.ofSeconds(300), complex.limits().timeout(), "600 s held at the 300 s ceiling");
        assertEquals(1024L * 1024 * 1024, complex.limits().memoryBytes());
        assertEquals(List.of("profile complex: timeout 600 s is above the ceiling of 300 s; held at the ceiling"),
                complex.notes());

        ExecutorProfiles.Applied datascience = executors.applyProfile("datascience", limits, caller.policy());
        assertEquals(Optional.of("agentexec/datascience:bookworm"), datascience.image());
        assertEquals(limits.withTimeout(Duration.ofSeconds(120)).withMemoryBytes(1024L * 1024 * 1024), datascience.limits());
        assertEquals(limits, executors.applyProfile("default", limits, caller.policy()).limits());

        ExecutionRequest request = ExecutionRequest.of("python", "print('complex')", complex.limits());
        ExecutorOutcome ran = run(caller, Optional.empty(), request, ExecutorOptions.none().withProfile("complex"),
                complex.notes());
        assertTrue(completed(ran.outcome()).result().message().contains("timeout 600 s is above the ceiling of 300 s"));
        assertEquals(Optional.of("complex"), ran.profile());

        InvalidRequestException unknown = assertThrows(InvalidRequestException.class,
                () -> executors.applyProfile("huge", limits, caller.policy()));
        assertEquals("profile: unknown profile 'huge'; known: complex, datascience, default, medium, quick, simple",
                unknown.getMessage());
    }

    @Test
    void testsReportEachCaseInBothStyles() {
        Caller caller = tenant(node, "testing-tenant");
        String median = """
                import sys
                xs = sorted(float(x) for x in sys.stdin.read().split())
                n = len(xs)
                print(None if n == 0 else (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2))
                """;
        ExecutorOutcome io = run(caller, Optional.empty(), python(median), ExecutorOptions.none().withTests(
                new TestSuite.IoCases(List.of(new TestSuite.IoCase("3 1 2", "2.0\n"), new TestSuite.IoCase("4 1 3 2", "2.5"),
                        new TestSuite.IoCase("", "None  \n\n"), new TestSuite.IoCase("1 2", "2\n")))));
        TestReport report = io.tests().orElseThrow();
        assertEquals(List.of(TestReport.Status.PASS, TestReport.Status.PASS, TestReport.Status.PASS, TestReport.Status.FAIL),
                report.cases().stream().map(TestReport.CaseResult::status).toList());
        assertEquals(Optional.of("1.5\n"), report.cases().get(3).actualStdout());
        assertEquals(Optional.of("2\n"), report.cases().get(3).expectedStdout());
        assertEquals(Verdict.OK, report.cases().get(3).verdict(), "ran fine, printed something else");
        assertEquals(4, report.cases().stream().map(c -> c.executionId().orElseThrow()).distinct().count(),
                "one run per case");
        assertEquals("Test 1: PASS\nTest 2: PASS\nTest 3: PASS\nTest 4: FAIL\n", report.summary());

        String fibonacci = """
                def fibonacci(n):
                    if n <= 1:
                        return n
                    return fibonacci(n-1) + fibonacci(n-2)
                """;
        ExecutorOutcome seed = run(caller, Optional.empty(), python(fibonacci), ExecutorOptions.none().withTests(
                new TestSuite.Assertions(List.of("test_results.append(fibonacci(0) == 0)",
                        "test_results.append(fibonacci(1) == 1)", "test_results.append(fibonacci(5) == 5)",
                        "test_results.append(fibonacci(10) == 55)", "test_results.append(fibonacci(10) == 56)"))));
        assertEquals("Test 1: PASS\nTest 2: PASS\nTest 3: PASS\nTest 4: PASS\nTest 5: FAIL\n", seed.tests().orElseThrow().summary());

        CompletionException notPython = assertThrows(CompletionException.class, () -> executors.run(
                new SeedExecutors.Call(caller, "y", ExecutionRequest.of("bash", "echo 1", limits),
                        ExecutorOptions.none().withTests(new TestSuite.Assertions(List.of("test_results.append(True)"))),
                        "one-off", "java", List.of()),
                new PortRunner(port, caller, Optional.empty(), "y", n -> OutputListener.NONE)).toCompletableFuture().join());
        assertTrue(notPython.getCause().getMessage().startsWith("tests: assertions"), notPython.getCause().getMessage());
    }

    @Test
    void cacheIsPerTenantMarkedAndStatisticsCountEveryRunThroughARestart() {
        Caller alice = tenant(node, "alice");
        Caller bob = tenant(node, "bob");
        ExecutorOptions caching = ExecutorOptions.none().withCache(true).withExecutor("caching_executor")
                .withProfile("quick");
        Limits quick = executors.applyProfile("quick", limits, alice.policy()).limits();
        String code = "import random\nprint(random.random())";
        ExecutionRequest request = ExecutionRequest.of("python", code, quick);
        ExecutorOutcome first = run(alice, Optional.empty(), request, caching);
        ExecutorOutcome second = run(alice, Optional.empty(), request, caching);
        ExecutorOutcome bobs = run(bob, Optional.empty(), request, caching);
        String firstOut = completed(first.outcome()).result().stdout();
        assertFalse(first.cached());
        assertTrue(second.cached());
        assertEquals(firstOut, completed(second.outcome()).result().stdout(), "the cached answer, not a new run");
        assertEquals("[CACHED RESULT]\n" + completed(first.outcome()).result().output(),
                completed(second.outcome()).result().output());
        assertEquals("[CACHED RESULT]\n" + completed(first.outcome()).result().ag2Reply(),
                completed(second.outcome()).result().ag2Reply());
        assertFalse(bobs.cached(), "another tenant's cache is its own");
        assertFalse(completed(bobs.outcome()).result().stdout().equals(firstOut));
        // uncached: a random number again
        ExecutorOutcome plain = run(alice, Optional.empty(), request, caching.withCache(false));
        assertFalse(plain.cached());
        // a timeout with the operator's quick profile
        ExecutorOutcome slow = run(alice, Optional.empty(), ExecutionRequest.of("python", "import time; time.sleep(30)", quick),
                ExecutorOptions.none().withExecutor("slow_executor").withProfile("quick"));
        assertEquals(Verdict.TIMEOUT, completed(slow.outcome()).result().verdict());

        // a node records the samples it gathered once per flush interval
        StatsReport stats = io.agentexec.testkit.Await.until("alice's 4 runs in her statistics", () ->
                Optional.of(await(executors.stats(alice, Optional.empty()))).filter(r -> r.overall().count() >= 4));
        StatsReport.Summary cachingStats = stats.byExecutor().get("caching_executor");
        assertEquals(3, cachingStats.count());
        assertEquals(1, cachingStats.cached());
        assertEquals(1.0, cachingStats.successRate());
        assertTrue(cachingStats.p95Ms() >= cachingStats.p50Ms());
        assertEquals(List.of(128L * 1024 * 1024), cachingStats.memoryLimitsBytes());
        assertEquals(List.of(2000L), cachingStats.timeoutLimitsMs());
        StatsReport.Summary quickStats = stats.byProfile().get("quick");
        assertEquals(4, quickStats.count());
        assertEquals(1, quickStats.timeouts());
        assertEquals(0.75, quickStats.successRate());
        assertEquals(1, io.agentexec.testkit.Await.until("bob's run in his statistics", () ->
                Optional.of(await(executors.stats(bob, Optional.empty()))).filter(r -> r.overall().count() >= 1))
                .overall().count(), "bob sees his own only");

        // the cache and the statistics are in the journal: a new node on it answers the same
        port.close();
        node.close();
        open();
        Caller aliceAgain = tenant(node, "alice");
        ExecutorOutcome afterRestart = run(aliceAgain, Optional.empty(), request, caching);
        assertTrue(afterRestart.cached());
        assertEquals(firstOut, completed(afterRestart.outcome()).result().stdout());
        assertEquals(5, io.agentexec.testkit.Await.until("the run after the restart counted too", () ->
                Optional.of(await(executors.stats(aliceAgain, Optional.empty()))).filter(r -> r.overall().count() >= 5))
                .overall().count());
    }

    /**
     * A node records the samples it gathered before it leaves: with a flush interval no test outlives, the runs are
     * in the statistics after a restart only because the shutdown recorded them.
     */
    @Test
    void theSamplesANodeGatheredAreRecordedWhenItStops() {
        SeedExecutors gathering = SeedExecutors.cluster(node, TestNodes.config(config
                + "agentexec.executors.stats.flush-interval = 1h\n"));
        Caller carol = tenant(node, "carol-" + java.util.UUID.randomUUID().toString().substring(0, 8));
        for (int i = 0; i < 2; i++) {
            String id = ExecutionIds.newId(Instant.now(), Optional.empty());
            await(gathering.run(new SeedExecutors.Call(carol, id, python("print(" + i + ")"),
                    ExecutorOptions.none().withRetries(1), "one-off", "java", List.of()),
                    new PortRunner(port, carol, Optional.empty(), id, n -> OutputListener.NONE)));
        }
        // not read here: a read records what this node gathered first
        port.close();
        node.close();
        open();
        assertEquals(2, await(executors.stats(tenant(node, carol.tenant().orElseThrow()), Optional.empty()))
                .overall().count());
    }
}
