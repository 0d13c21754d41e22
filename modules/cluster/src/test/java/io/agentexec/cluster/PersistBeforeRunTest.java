package io.agentexec.cluster;

import static io.agentexec.cluster.TestNodes.await;
import static io.agentexec.cluster.TestNodes.completed;
import static io.agentexec.cluster.TestNodes.python;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.OutputChunk;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.Limits;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The coordinating node dies in the window between a worker's acceptance of an execution and the
 * entity's persisting of it (its JVM halts there, as {@code kill -9} would, through
 * {@link FaultInjection#HALT_AFTER_ACCEPT_PROPERTY}); the caller then retries under the same key
 * through the node that takes over. The code must not run twice silently: it ran once, or the
 * reply says {@code mayHaveRunMoreThanOnce}. How often it ran is counted by what it left: a line per
 * run in the sandbox's workspace, an output line per run of the one-off.
 *
 * <p>The worker is a node of this JVM (worker role only); the coordinators are gateway-only nodes in
 * child JVMs, one per scenario; the last coordinator is a gateway node of this JVM.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class PersistBeforeRunTest {
    private static final String HALT_SANDBOX = "halt-sbx-";
    private static final String HALT_ONE_OFF = "halt-one-";

    private final String schema = TestNodes.newSchema();
    private final List<Process> children = new ArrayList<>();
    private AgentexecCluster worker;
    private AgentexecCluster lastGateway;
    private int workerPort;
    private Limits limits;

    @BeforeAll
    void start() {
        workerPort = TestNodes.freePort();
        // A worker-only node of this JVM, the cluster's first: it must outlive each coordinator it is left alone
        // with (of two equal halves, the split-brain resolver keeps the one with the lowest address).
        worker = TestNodes.start(TestNodes.common(workerPort, List.of(workerPort), "worker") + TestNodes.postgres(schema)
                + "agentexec.cluster.worker { slots = 4, queue = 4 }\n");
        limits = worker.engine().orElseThrow().defaultLimits().withTimeout(Duration.ofSeconds(30));
    }

    @AfterAll
    void stop() throws Exception {
        for (Process child : children) {
            child.destroyForcibly().waitFor();
        }
        if (lastGateway != null) {
            lastGateway.close();
        }
        if (worker != null) {
            worker.close();
        }
        TestNodes.dropSchema(schema);
    }

    /** A gateway-only coordinator in a child JVM that halts when a worker accepted a key with this prefix. */
    private Process startCoordinator(String haltPrefix) throws Exception {
        int port;
        do {
            port = TestNodes.freePort();
        } while (port <= workerPort);
        Path config = Files.createTempFile("agentexec-coordinator", ".conf");
        Files.writeString(config, TestNodes.common(port, List.of(workerPort), "gateway") + TestNodes.postgres(schema));
        Path log = Files.createTempFile("agentexec-coordinator", ".log");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process child = new ProcessBuilder(java, "-Xmx384m",
                "-D" + FaultInjection.HALT_AFTER_ACCEPT_PROPERTY + "=" + haltPrefix,
                "-cp", System.getProperty("java.class.path"), NodeMain.class.getName(), config.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        children.add(child);
        TestNodes.eventually("the coordinator JVM is up", () -> {
            try {
                return Files.readString(log).contains("agentexec node up");
            } catch (java.io.IOException e) {
                return false;
            }
        });
        TestNodes.eventually("the worker's node sees the coordinator up", () -> members() == 2);
        return child;
    }

    /** Members the worker's node sees up. */
    private int members() {
        int up = 0;
        for (Member member : Cluster.get(worker.system()).state().getMembers()) {
            if (member.status() == MemberStatus.up()) {
                up++;
            }
        }
        return up;
    }

    /** The coordinator halted in the window (exit 137) and the cluster has removed its node. */
    private void awaitHalted(Process coordinator) throws Exception {
        assertTrue(coordinator.waitFor(TestNodes.WAIT.toSeconds(), TimeUnit.SECONDS), "the coordinator halted");
        assertEquals(137, coordinator.exitValue(), "halted by the fault injection, after the worker accepted");
        TestNodes.eventually("the halted coordinator's node is removed", () -> members() == 1);
    }

    /**
     * The coordinator now hosting the entities sees the worker: a probe one-off (its key matches no halt
     * prefix) goes through it. A refusal (Overloaded: nothing ran, nothing recorded) is tried again, as a
     * client would; a retry sent before the new coordinator knew the worker would have lost the sandbox's
     * binding, and with it the workspace that counts the runs.
     */
    private void awaitCoordinatorSeesWorker() {
        TestNodes.eventually("the coordinator sees the worker", () -> await(worker.execute(Optional.empty(),
                python("print(1)", limits), "probe-" + UUID.randomUUID())) instanceof ExecutionOutcome.Completed);
    }

    /** Nothing runs or waits on the worker any more: every attempt that will ever run has run. */
    private void awaitWorkerIdle() {
        TestNodes.eventually("the worker is idle", () -> await(worker.workers()).stream()
                .allMatch(w -> w.running() == 0 && w.queued() == 0));
    }

    @Test
    @Order(1)
    void aSandboxRunIsNotRepeatedSilentlyWhenItsCoordinatorDiesBeforePersistingItsStart() throws Exception {
        Process coordinator = startCoordinator(HALT_SANDBOX);
        TestNodes.awaitWorkers(worker, 1);
        awaitCoordinatorSeesWorker();
        String sandbox = await(worker.createSandbox("python", limits)).sandboxId();
        completed(await(worker.execute(Optional.of(sandbox), python("open('runs.txt', 'a').close()", limits),
                "warm-" + UUID.randomUUID())));

        String key = HALT_SANDBOX + UUID.randomUUID();
        ExecutionRequest appendALine = python("open('runs.txt', 'a').write('ran\\n')\nprint('ran')", limits);
        worker.execute(Optional.of(sandbox), appendALine, key); // its coordinator halts: no answer will come
        awaitHalted(coordinator);

        startCoordinator(HALT_ONE_OFF); // takes the sandbox's entity over; does not halt for it
        awaitCoordinatorSeesWorker();
        ExecutionOutcome retried = await(worker.execute(Optional.of(sandbox), appendALine, key));
        assertTrue(completed(retried).workspaceLost().isEmpty(), "the retry ran in the same container: " + retried);
        awaitWorkerIdle();
        String runs = new String(await(worker.readFile(sandbox, "runs.txt", 4096)), StandardCharsets.UTF_8);
        long ran = runs.lines().count();
        System.out.printf("sandbox run whose coordinator died after the worker's acceptance: ran %d time(s); reply %s%n",
                ran, retried);
        assertTrue(ran >= 1, "the retry ran it: " + retried);
        assertTrue(ran == 1 || retried.mayHaveRunMoreThanOnce(),
                "ran " + ran + " times, and the reply does not say it may have run more than once: " + retried);
    }

    @Test
    @Order(2)
    void aOneOffIsNotRepeatedSilentlyWhenItsCoordinatorDiesBeforePersistingItsStart() throws Exception {
        // The coordinator of the first test's second half halts for one-offs; without it (that test failed
        // early) a fresh one.
        Process coordinator = children.isEmpty() || !children.get(children.size() - 1).isAlive() || members() != 2
                ? startCoordinator(HALT_ONE_OFF) : children.get(children.size() - 1);
        TestNodes.awaitWorkers(worker, 1);
        awaitCoordinatorSeesWorker();

        String key = HALT_ONE_OFF + UUID.randomUUID();
        String marker = "ran-" + UUID.randomUUID();
        ExecutionRequest printOnce = python("import time\nprint('" + marker + "', flush=True)\ntime.sleep(1)", limits);
        AtomicInteger runs = new AtomicInteger();
        Consumer<OutputChunk> countRuns = chunk -> {
            if (chunk.text().contains(marker)) {
                runs.incrementAndGet();
            }
        };
        worker.execute(Optional.empty(), printOnce, key, countRuns); // its coordinator halts: no answer will come
        awaitHalted(coordinator);

        lastGateway = TestNodes.start(TestNodes.common(TestNodes.freePort(), List.of(workerPort), "gateway")
                + TestNodes.postgres(schema));
        TestNodes.eventually("the new gateway node is up", () -> members() == 2);
        TestNodes.awaitWorkers(lastGateway, 1);
        ExecutionOutcome retried = await(worker.execute(Optional.empty(), printOnce, key, countRuns));
        assertEquals(marker + "\n", completed(retried).result().stdout());
        awaitWorkerIdle();
        System.out.printf("one-off whose coordinator died after the worker's acceptance: ran %d time(s); reply %s%n",
                runs.get(), retried);
        assertTrue(runs.get() == 1 || retried.mayHaveRunMoreThanOnce(),
                "ran " + runs.get() + " times, and the reply does not say it may have run more than once: " + retried);
    }
}
