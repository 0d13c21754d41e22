package io.agentexec.cluster.executors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.port.Caller;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.model.CodeBlock;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Verdict;
import io.agentexec.sandbox.policy.ExecutionPolicy;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The executors' rules that need no sandbox: the seed's policy lists and words, Judge0's comparison, which outcomes
 * are retried and cached. The runs here are answered by a runner standing where the port stands, returning outcomes
 * the port returns (an infrastructure failure cannot be caused on purpose on a healthy worker without waiting out
 * the cluster's own retries).
 */
class ExecutorRulesTest {

    @Test
    void theSeedsListsInTheSeedsOrder() {
        CodePolicy secure = CodePolicy.seedSecure("secure");
        assertEquals("Potentially unsafe code detected: import os",
                secure.check(List.of(new CodeBlock("python", "import os, socket"))).orElseThrow().message());
        assertEquals("Network access not allowed: socket",
                secure.check(List.of(new CodeBlock("python", "import socket"))).orElseThrow().message());
        assertEquals("Network access not allowed: urllib",
                secure.check(List.of(new CodeBlock("python", "print(1)"), new CodeBlock("python", "from urllib.request import urlopen")))
                        .orElseThrow().message());
        assertTrue(secure.check(List.of(new CodeBlock("python", "print(sorted([3, 1]))"))).isEmpty());
        // the configured preset is the seed's
        ExecutorSettings settings = ExecutorSettings.fromConfig(ConfigFactory.load());
        assertEquals(secure.rules(), settings.policy("secure").rules());
    }

    @Test
    void judge0sComparison() {
        assertTrue(TestReport.sameOutput("2.5", "2.5\n"));
        assertTrue(TestReport.sameOutput("a\nb\n", "a  \nb\n\n"));
        assertFalse(TestReport.sameOutput("a b", "a  b"));
        assertFalse(TestReport.sameOutput(" 1", "1"));
        assertEquals(List.of(TestReport.Status.PASS, TestReport.Status.FAIL, TestReport.Status.FAIL),
                TestReport.parseAssertions("Test 1: PASS\nTest 2: FAIL\n", 3));
    }

    @Test
    void sandboxErrorsAreRetriedButNeverCached() {
        SeedExecutors executors = SeedExecutors.local(ConfigFactory.load());
        Caller caller = Caller.tenant("t", ExecutionPolicy.fromConfig(ConfigFactory.load()), 1);
        ExecutionRequest request = ExecutionRequest.of("python", "print(1)",
                EngineSettings.fromConfig(ConfigFactory.load()).defaultLimits());
        AtomicInteger runs = new AtomicInteger();
        SeedExecutors.Runner broken = new SeedExecutors.Runner() {
            @Override
            public String executionId(int sequence) {
                return "exe-" + sequence;
            }

            @Override
            public CompletionStage<ExecutionOutcome> run(int sequence, String executionId, ExecutionRequest r) {
                runs.incrementAndGet();
                return CompletableFuture.completedFuture(new ExecutionOutcome.Completed(executionId,
                        ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, "sandbox failed: the daemon went away", "docker"),
                        List.of(), Optional.empty(), false));
            }
        };
        ExecutorOptions options = ExecutorOptions.none().withCache(true).withRetries(2);
        SeedExecutors.Call call = new SeedExecutors.Call(caller, "exe-1", request, options, "one-off", "java", List.of());
        ExecutorOutcome first = executors.run(call, broken).toCompletableFuture().join();
        assertEquals(2, first.attempts().size(), "an infrastructure failure is worth another attempt");
        ExecutorOutcome second = executors.run(call, broken).toCompletableFuture().join();
        assertFalse(second.cached(), "a SANDBOX_ERROR is never cached");
        assertEquals(4, runs.get());
        assertFalse(SeedExecutors.retryable(new ExecutionOutcome.Overloaded("k", "busy")));
        assertFalse(SeedExecutors.retryable(new ExecutionOutcome.Completed("k",
                ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1, "no", "policy"), List.of(), Optional.empty(), false)));
        assertTrue(SeedExecutors.retryable(new ExecutionOutcome.SandboxLost("k", "worker gone", List.of(), false)));
    }
}
