package io.agentexec.cluster;

import static io.agentexec.cluster.TestNodes.await;
import static io.agentexec.cluster.TestNodes.completed;
import static io.agentexec.cluster.TestNodes.python;
import static io.agentexec.cluster.TestNodes.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.execution.ExecutionEntity;
import io.agentexec.cluster.worker.WorkerLoad;
import io.agentexec.sandbox.docker.DockerBackend;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A worker node in its own JVM is killed with SIGKILL while 50 executions are in flight, ten of
 * them in sandboxes. Every one gets exactly one terminal result; none is lost; an execution that
 * ran on the dead worker is either retried elsewhere with the lost attempt listed, or (in a
 * sandbox) ends SANDBOX_LOST and the sandbox's next run happens in a fresh, announced workspace.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class WorkerKillTest {
    private static final int IN_FLIGHT = 50;
    private static final int SANDBOXES = 10;
    private static final String NODE_CONFIG = "agentexec.cluster.worker { slots = 6, queue = 30 }\n";

    private final String schema = TestNodes.newSchema();
    private AgentexecCluster gateway;
    private Process worker;
    private int workerPort;
    private Limits limits;

    @BeforeAll
    void start() throws Exception {
        int gatewayPort = TestNodes.freePort();
        do {
            workerPort = TestNodes.freePort();
        } while (workerPort <= gatewayPort); // split-brain resolver: of two equal halves the lower address stays
        gateway = TestNodes.start(TestNodes.common(gatewayPort, List.of(gatewayPort), "gateway,worker")
                + TestNodes.postgres(schema) + NODE_CONFIG);
        limits = gateway.engine().orElseThrow().defaultLimits().withTimeout(Duration.ofSeconds(60));

        Path config = Files.createTempFile("agentexec-worker", ".conf");
        Files.writeString(config, TestNodes.common(workerPort, List.of(gatewayPort), "worker") + NODE_CONFIG);
        Path log = Files.createTempFile("agentexec-worker", ".log");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        worker = new ProcessBuilder(java, "-Xmx384m", "-cp", System.getProperty("java.class.path"),
                NodeMain.class.getName(), config.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        TestNodes.eventually("the worker JVM is up", () -> {
            try {
                return Files.readString(log).contains("agentexec node up");
            } catch (java.io.IOException e) {
                return false;
            }
        });
        TestNodes.awaitWorkers(gateway, 2);
    }

    @AfterAll
    void stop() throws Exception {
        if (worker != null) {
            worker.destroyForcibly().waitFor();
        }
        if (gateway != null) {
            // Remove what the killed JVM left behind: only containers whose owner process is dead.
            gateway.engine().map(e -> e.backend()).filter(DockerBackend.class::isInstance)
                    .map(DockerBackend.class::cast).ifPresent(DockerBackend::reapOrphans);
            gateway.close();
        }
        TestNodes.dropSchema(schema);
    }

    private boolean onKilledWorker(String workerName) {
        return workerName.contains(":" + workerPort + "/");
    }

    @Test
    void everyInFlightExecutionEndsExactlyOnceWhenAWorkerJvmIsKilled() throws Exception {
        List<String> sandboxes = new ArrayList<>();
        for (int i = 0; i < SANDBOXES; i++) {
            String id = await(gateway.createSandbox("python", limits)).sandboxId();
            completed(run(gateway, Optional.of(id), "open('state.txt', 'w').write('kept')", limits));
            sandboxes.add(id);
        }
        List<String> onVictim = sandboxes.stream()
                .filter(id -> onKilledWorker(await(gateway.sandbox(id)).worker().orElseThrow())).toList();
        assertFalse(onVictim.isEmpty(), "placement put some sandboxes on the worker to be killed");
        assertTrue(onVictim.size() < SANDBOXES, "and some on the surviving one");

        Map<String, CompletableFuture<ExecutionOutcome>> sandboxRuns = new LinkedHashMap<>();
        Map<String, CompletableFuture<ExecutionOutcome>> oneOffs = new LinkedHashMap<>();
        for (String id : sandboxes) {
            sandboxRuns.put(id, gateway.execute(Optional.of(id),
                    python("import time; time.sleep(4); print(open('state.txt').read())", limits),
                    "run-" + UUID.randomUUID()).toCompletableFuture());
        }
        for (int i = 0; i < IN_FLIGHT - SANDBOXES; i++) {
            String key = "kill-" + UUID.randomUUID();
            oneOffs.put(key, gateway.execute(Optional.empty(),
                    python("import time; time.sleep(4); print('" + key + "')", limits), key).toCompletableFuture());
        }
        TestNodes.eventually("the doomed worker is running executions", () -> await(gateway.workers()).stream()
                .filter(w -> onKilledWorker(w.worker().path().toString())).mapToInt(WorkerLoad::running).sum() > 0);
        Thread.sleep(1000);
        worker.destroyForcibly(); // SIGKILL: no leaving, no hand-over
        worker.waitFor();

        try {
            CompletableFuture.allOf(oneOffs.values().toArray(CompletableFuture[]::new)).get(3, java.util.concurrent.TimeUnit.MINUTES);
        } catch (java.util.concurrent.TimeoutException e) {
            StringBuilder pending = new StringBuilder();
            oneOffs.forEach((key, reply) -> {
                if (!reply.isDone()) {
                    pending.append('\n').append(await(gateway.execution(key)));
                }
            });
            throw new AssertionError("executions without a terminal reply:" + pending + "\nworkers: " + await(gateway.workers()));
        }
        int firstTry = 0;
        int retried = 0;
        int lost = 0;
        for (Map.Entry<String, CompletableFuture<ExecutionOutcome>> entry : oneOffs.entrySet()) {
            ExecutionOutcome.Completed done = completed(await(entry.getValue()));
            assertEquals(Verdict.OK, done.result().verdict(), done.toString());
            assertEquals(entry.getKey() + "\n", done.result().stdout());
            Attempt last = done.attempts().get(done.attempts().size() - 1);
            assertFalse(onKilledWorker(last.worker()) && done.attempts().size() > 1, "a retry never goes to the dead worker");
            if (done.attempts().size() == 1) {
                firstTry++;
                assertFalse(done.mayHaveRunMoreThanOnce());
            } else {
                retried++;
                assertTrue(done.mayHaveRunMoreThanOnce(), "a re-run is announced: " + done.attempts());
                done.attempts().subList(0, done.attempts().size() - 1).forEach(a -> {
                    assertTrue(onKilledWorker(a.worker()), "only attempts on the killed worker were lost: " + a);
                    assertTrue(a.outcome().startsWith("worker lost"), a.outcome());
                });
            }
            // The reply was an event first: the journal lists the same attempts.
            ExecutionEntity.ExecutionView view = await(gateway.execution(entry.getKey()));
            assertEquals(done.attempts(), view.attempts());
            assertEquals(Optional.of(done), view.outcome());
        }
        for (Map.Entry<String, CompletableFuture<ExecutionOutcome>> entry : sandboxRuns.entrySet()) {
            ExecutionOutcome reply = await(entry.getValue());
            if (onVictim.contains(entry.getKey())) {
                assertEquals(ExecutionOutcome.Status.SANDBOX_LOST, reply.status(), reply.toString());
                lost++;
            } else {
                assertEquals("kept\n", completed(reply).result().stdout());
                firstTry++;
            }
        }
        assertEquals(IN_FLIGHT, firstTry + retried + lost, "every execution ended exactly once");
        assertTrue(retried > 0, "some one-off executions were retried on the surviving worker");

        for (String id : onVictim) {
            SandboxView view = await(gateway.sandbox(id));
            assertTrue(view.worker().isEmpty() && view.workspaceLostReason().isPresent(), view.toString());
            ExecutionOutcome.Completed next = completed(run(gateway, Optional.of(id),
                    "import os; print(os.path.exists('state.txt'))", limits));
            assertEquals("False\n", next.result().stdout());
            assertTrue(next.workspaceLost().isPresent(), "the next run says the workspace was lost");
            assertFalse(onKilledWorker(next.attempts().get(0).worker()));
        }
        System.out.printf("kill -9 of a worker JVM with %d executions in flight: %d completed on the first attempt, "
                + "%d completed after a retry (announced), %d sandbox executions ended SANDBOX_LOST, 0 lost%n",
                IN_FLIGHT, firstTry, retried, lost);
    }
}
