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
import io.agentexec.cluster.worker.WorkerLoad;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import io.agentexec.sandbox.docker.DockerBackend;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A worker node in a JVM of its own ({@link NodeMain}) stopped by SIGTERM drains: the run it was running finishes
 * there, the one-off waiting in its queue runs once on the other worker (one attempt, not announced as maybe run
 * twice), and every sandbox it held moves to the other worker with its files, so that its next run sees them and
 * says nothing of a lost workspace. Before the drain existed, the same SIGTERM removed the containers at once: the
 * running sandbox run ended SANDBOX_LOST and every sandbox's next run reported its workspace lost.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class WorkerDrainTest {
    private static final int SANDBOXES = 3;

    private final String schema = TestNodes.newSchema();
    private final List<AgentexecCluster> nodes = new ArrayList<>();
    private Process workerA;
    private Path logA;
    private AgentexecCluster gateway;
    private int gatewayPort;
    private Limits limits;

    @BeforeAll
    void start() {
        gatewayPort = TestNodes.freePort();
        gateway = startNode(gatewayPort, "gateway", "");
        limits = io.agentexec.sandbox.EngineSettings.fromConfig(TestNodes.config("")).defaultLimits()
                .withTimeout(Duration.ofSeconds(60));
    }

    private AgentexecCluster startNode(int port, String roles, String extra) {
        AgentexecCluster node = TestNodes.start(TestNodes.common(port, List.of(gatewayPort), roles)
                + TestNodes.postgres(schema) + extra);
        nodes.add(node);
        return node;
    }

    @AfterAll
    void stop() throws Exception {
        if (workerA != null && workerA.isAlive()) {
            workerA.destroyForcibly().waitFor();
            // what a killed JVM left behind: only containers whose owner process is dead
            nodes.stream().flatMap(n -> n.engine().stream()).map(e -> e.backend())
                    .filter(DockerBackend.class::isInstance).map(DockerBackend.class::cast).findFirst()
                    .ifPresent(DockerBackend::reapOrphans);
        }
        for (int i = nodes.size() - 1; i >= 0; i--) {
            nodes.get(i).close();
        }
        TestNodes.dropSchema(schema);
    }

    private String logA() {
        try {
            return Files.readString(logA);
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    private static boolean on(int port, String worker) {
        return worker.contains(":" + port + "/");
    }

    private WorkerLoad loadOf(int port) {
        return await(gateway.workers()).stream().filter(w -> on(port, w.worker().path().toString())).findFirst()
                .orElse(new WorkerLoad(null, 0, 0, 0, 0, 0));
    }

    @Test
    void aDrainedWorkerHandsItsSandboxesWithTheirFilesAndItsQueueToAnotherWorker() throws Exception {
        int portA = TestNodes.freePort();
        Path config = Files.createTempFile("agentexec-drain-worker", ".conf");
        Files.writeString(config, TestNodes.common(portA, List.of(gatewayPort), "worker") + TestNodes.postgres(schema)
                + "agentexec.cluster.worker { slots = 1, queue = 4 }\n");
        logA = Files.createTempFile("agentexec-drain-worker", ".log");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        workerA = new ProcessBuilder(java, "-Xmx384m", "-cp", System.getProperty("java.class.path"),
                NodeMain.class.getName(), config.toString())
                .redirectErrorStream(true).redirectOutput(logA.toFile()).start();
        TestNodes.eventually("worker A's JVM is up", () -> logA().contains("agentexec node up"));
        TestNodes.awaitWorkers(gateway, 1);
        List<String> sandboxes = new ArrayList<>();
        for (int i = 0; i < SANDBOXES; i++) {
            String id = "drain-" + i + "-" + UUID.randomUUID();
            // the first ask may meet sharding still starting on a busy machine: creating the same id again is a no-op
            TestNodes.eventually("sandbox " + id + " created", () -> {
                try {
                    gateway.createSandbox(id, "python", limits).toCompletableFuture().get();
                    return true;
                } catch (Exception notYet) {
                    return false;
                }
            });
            await(gateway.writeFile(id, "in.txt", ("input " + i).getBytes(StandardCharsets.UTF_8)));
            ExecutionOutcome.Completed wrote = completed(run(gateway, Optional.of(id), """
                    import os
                    os.makedirs('d/e', exist_ok=True)
                    open('d/e/f.txt', 'w').write('deep %d')
                    open('run.sh', 'w').write('echo hi')
                    os.chmod('run.sh', 0o755)
                    """.formatted(i), limits));
            assertEquals(Verdict.OK, wrote.result().verdict(), wrote.result().stderr());
            assertTrue(on(portA, await(gateway.sandbox(id)).worker().orElseThrow()), "bound to the first worker");
            sandboxes.add(id);
        }

        int portB = TestNodes.freePort();
        startNode(portB, "worker", "agentexec.cluster.worker { slots = 1, queue = 1 }\n");
        TestNodes.awaitWorkers(gateway, 2);

        // A's one slot runs a sandbox's execution, B's a one-off; the next one-off then waits in A's (larger) queue.
        CompletableFuture<ExecutionOutcome> running = gateway.execute(Optional.of(sandboxes.get(0)), python(
                "import time; time.sleep(6); open('late.txt', 'w').write('written while its worker drained')", limits),
                "busy-" + UUID.randomUUID()).toCompletableFuture();
        TestNodes.eventually("A runs the sandbox's execution", () -> loadOf(portA).running() == 1);
        CompletableFuture<ExecutionOutcome> onB = gateway.execute(Optional.empty(),
                python("import time; time.sleep(6); print('b')", limits), "b-" + UUID.randomUUID()).toCompletableFuture();
        TestNodes.eventually("B runs a one-off", () -> loadOf(portB).running() == 1);
        String queuedKey = "queued-" + UUID.randomUUID();
        CompletableFuture<ExecutionOutcome> queued = gateway.execute(Optional.empty(),
                python("print('the queued one-off ran')", limits), queuedKey).toCompletableFuture();
        TestNodes.eventually("the one-off waits in A's queue", () -> loadOf(portA).queued() == 1);

        workerA.destroy(); // SIGTERM

        ExecutionOutcome.Completed ranOnA = completed(await(running));
        assertEquals(Verdict.OK, ranOnA.result().verdict(), "the running execution finished: " + ranOnA);
        assertEquals(1, ranOnA.attempts().size(), ranOnA.toString());
        assertTrue(on(portA, ranOnA.attempts().get(0).worker()), "it finished where it ran: " + ranOnA);

        ExecutionOutcome.Completed handedBack = completed(await(queued));
        assertEquals("the queued one-off ran\n", handedBack.result().stdout(), handedBack.toString());
        assertEquals(1, handedBack.attempts().size(), "no attempt counted for the queue's hand-back: " + handedBack);
        Attempt only = handedBack.attempts().get(0);
        assertTrue(on(portB, only.worker()), "it ran on B: " + handedBack);
        assertFalse(handedBack.mayHaveRunMoreThanOnce(), "it ran once: " + handedBack);
        assertEquals(Verdict.OK, completed(await(onB)).result().verdict());

        assertTrue(workerA.waitFor(TestNodes.WAIT.toSeconds(), TimeUnit.SECONDS), "A's JVM ended: " + logA());
        assertTrue(logA().contains("drained in"), "A drained before it left: " + logA());
        TestNodes.eventually("A left the cluster", () -> await(gateway.workers()).size() == 1);

        for (int i = 0; i < SANDBOXES; i++) {
            String id = sandboxes.get(i);
            assertTrue(on(portB, await(gateway.sandbox(id)).worker().orElse("")), "moved to B: " + await(gateway.sandbox(id)));
            ExecutionOutcome.Completed next = completed(run(gateway, Optional.of(id), """
                    import os
                    print(open('in.txt').read(), open('d/e/f.txt').read(), os.access('run.sh', os.X_OK),
                          open('late.txt').read() if os.path.exists('late.txt') else '-')
                    """, limits));
            assertEquals(Verdict.OK, next.result().verdict(), next.toString());
            String late = i == 0 ? "written while its worker drained" : "-";
            assertEquals("input " + i + " deep " + i + " True " + late + "\n", next.result().stdout(), next.toString());
            assertTrue(next.workspaceLost().isEmpty(), "the workspace moved, it was not lost: " + next);
            assertEquals(1, next.attempts().size(), next.toString());
            assertTrue(on(portB, next.attempts().get(0).worker()), "it ran on B: " + next);
        }
    }
}
