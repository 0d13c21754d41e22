package io.agentexec.cluster;

import static io.agentexec.cluster.TestNodes.await;
import static io.agentexec.cluster.TestNodes.completed;
import static io.agentexec.cluster.TestNodes.run;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.model.Container;
import io.agentexec.sandbox.docker.DockerBackend;
import io.agentexec.sandbox.model.Limits;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The reaper by cluster membership, with real Docker and real JVMs: worker nodes in child JVMs, each under a host
 * name of its own (a UTS namespace, so the old host-and-pid rule cannot recognise their containers), sharing this
 * machine's Docker daemon; a gateway-only node in this JVM (it has no engine: it never touches the daemon), the
 * journal in the local PostgreSQL.
 * <ol>
 *   <li>Two workers; one is killed with SIGKILL: the other removes its containers, once the cluster has removed it.</li>
 *   <li>The last worker is killed: nobody removes its containers; a new worker (another name, another address, another
 *       host name) joins and removes them, and leaves alone a container of another cluster's node on the daemon.</li>
 * </ol>
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ContainerReaperClusterTest {
    /** How long the reaping may take: failure detection, the split-brain resolver's 2 s, removal; never a speed goal. */
    private static final Duration REAPED_WITHIN = Duration.ofMinutes(2);
    private static final String WORKER_CONFIG = "agentexec.cluster.worker { slots = 2, queue = 4 }\n";

    private final String schema = TestNodes.newSchema();
    private final List<Process> children = new ArrayList<>();
    private final List<String> foreignContainers = new ArrayList<>();
    private AgentexecCluster gateway;
    private int gatewayPort;
    private DockerClient docker;
    private Limits limits;
    private Process first;
    private Process second;

    @BeforeAll
    void start() throws Exception {
        Assumptions.assumeTrue(canUnshareUts(), "needs root and unshare(1) to give each worker JVM a host name of its own");
        docker = DockerBackend.client();
        Assumptions.assumeTrue(DockerBackend.daemonAnswers(docker), "needs the Docker daemon");
        gatewayPort = TestNodes.freePort();
        gateway = TestNodes.start(TestNodes.common(gatewayPort, List.of(gatewayPort), "gateway")
                + TestNodes.postgres(schema));
        limits = io.agentexec.sandbox.EngineSettings.fromConfig(TestNodes.config(""))
                .defaultLimits().withTimeout(Duration.ofSeconds(30));
    }

    @AfterAll
    void stop() throws Exception {
        for (Process p : children) {
            p.destroyForcibly().waitFor();
        }
        if (docker != null) {
            for (String id : foreignContainers) {
                try {
                    docker.removeContainerCmd(id).withForce(true).exec();
                } catch (RuntimeException gone) {
                    // removed meanwhile
                }
            }
            // whatever a failed run left of the children's (never another JVM's): by their pids
            for (Process p : children) {
                for (Container c : containersOf(p)) {
                    try {
                        docker.removeContainerCmd(c.getId()).withForce(true).exec();
                    } catch (RuntimeException gone) {
                        // removed meanwhile
                    }
                }
            }
        }
        if (gateway != null) {
            gateway.close();
            TestNodes.dropSchema(schema);
        }
    }

    @Test
    @Order(1)
    void theContainersOfAWorkerKilledWithSigkillAreRemovedByTheOtherWorker() throws Exception {
        first = startWorker("agentexec-reaper-a");
        second = startWorker("agentexec-reaper-b");
        TestNodes.awaitWorkers(gateway, 2);
        // sandboxes on both workers (placement spreads them), each with a container
        List<String> sandboxes = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            String id = await(gateway.createSandbox("python", limits)).sandboxId();
            completed(run(gateway, Optional.of(id), "print('here')", limits));
            sandboxes.add(id);
        }
        TestNodes.eventually("the first worker holds containers", () -> !containersOf(first).isEmpty());
        int left = containersOf(first).size();

        first.destroyForcibly().waitFor(); // SIGKILL: its JVM removes nothing

        awaitNone(first, "the surviving worker removes the " + left + " container(s) of the killed one");
        assertTrue(second.isAlive());
        assertFalse(containersOf(second).isEmpty(), "the survivor's own containers stay");
        System.out.printf("reaper: %d container(s) of a worker killed with SIGKILL removed by the other worker%n", left);
    }

    @Test
    @Order(2)
    void aRestartedWorkerUnderANewNameRemovesWhatItsPredecessorLeft() throws Exception {
        Assumptions.assumeTrue(second != null && second.isAlive(), "needs the second worker of the first test");
        TestNodes.eventually("the second worker holds containers", () -> !containersOf(second).isEmpty());
        int left = containersOf(second).size();
        second.destroyForcibly().waitFor();
        // no worker is left on this daemon: nobody removes them until a new one comes
        TestNodes.eventually("the cluster has no worker", () -> await(gateway.workers()).isEmpty());
        assertFalse(containersOf(second).isEmpty(), "no node shares the daemon: the leftovers are still there");

        // a container of another cluster sharing the daemon: its node was never one of this cluster's
        String foreign = docker.createContainerCmd("agentexec/python:bookworm").withEntrypoint("/nonexistent")
                .withLabels(Map.of("io.agentexec.managed", "true", "io.agentexec.owner", "another-cluster-host/1/1",
                        "io.agentexec.node.address", "pekko://agentexec@127.0.0.1:1", "io.agentexec.node.uid", "42",
                        "io.agentexec.node.name", "elsewhere"))
                .exec().getId();
        foreignContainers.add(foreign);

        Process third = startWorker("agentexec-reaper-c");
        TestNodes.awaitWorkers(gateway, 1);
        awaitNone(second, "the new worker removes the " + left + " container(s) its predecessor left");
        assertTrue(docker.listContainersCmd().withShowAll(true).withIdFilter(List.of(foreign)).exec().size() == 1,
                "another cluster's container on the same daemon is left alone");
        System.out.printf("reaper: %d container(s) of a killed worker removed by its successor (new name)%n", left);
        third.destroy();
        third.waitFor();
    }

    /** A worker node in a child JVM, under host name {@code hostName}, its port above the gateway's. */
    private Process startWorker(String hostName) throws IOException {
        int port;
        do {
            port = TestNodes.freePort();
        } while (port <= gatewayPort); // split-brain resolver: of two equal halves the lower address stays
        Path config = Files.createTempFile("agentexec-reaper-worker", ".conf");
        Files.writeString(config, TestNodes.common(port, List.of(gatewayPort), "worker") + TestNodes.postgres(schema)
                + WORKER_CONFIG);
        // the JVM resolves its own host name through this file: no DNS entry is needed for it
        Path hosts = Files.createTempFile("agentexec-reaper-hosts", "");
        Files.writeString(hosts, "127.0.0.1 localhost " + hostName + "\n");
        Path log = Files.createTempFile("agentexec-reaper-worker", ".log");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder("unshare", "--uts", "--", "sh", "-c", "hostname \"$0\" && exec \"$@\"", hostName,
                java, "-Xmx384m", "-Djdk.net.hosts.file=" + hosts, "-cp", System.getProperty("java.class.path"),
                NodeMain.class.getName(), config.toString())
                .redirectErrorStream(true).redirectOutput(log.toFile()).start();
        children.add(p);
        TestNodes.eventually("the worker JVM " + hostName + " is up", () -> {
            assertTrue(p.isAlive(), () -> "the worker JVM died: " + read(log));
            return read(log).contains("agentexec node up");
        });
        return p;
    }

    /** The managed containers whose owner label names the child's pid (host/PID/start). */
    private List<Container> containersOf(Process p) {
        return docker.listContainersCmd().withShowAll(true)
                .withLabelFilter(Map.of("io.agentexec.managed", "true")).exec().stream()
                .filter(c -> c.getLabels() != null && String.valueOf(c.getLabels().get("io.agentexec.owner"))
                        .contains("/" + p.pid() + "/"))
                .toList();
    }

    private void awaitNone(Process owner, String what) throws InterruptedException {
        long deadline = System.nanoTime() + REAPED_WITHIN.toNanos();
        while (!containersOf(owner).isEmpty()) {
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + REAPED_WITHIN + " waiting for: " + what + "; still there: "
                        + containersOf(owner).stream().map(c -> c.getId().substring(0, 12) + " " + c.getLabels()).toList());
            }
            Thread.sleep(250);
        }
    }

    private static String read(Path log) {
        try {
            return Files.readString(log);
        } catch (IOException e) {
            return "";
        }
    }

    private static boolean canUnshareUts() {
        try {
            Process p = new ProcessBuilder("unshare", "--uts", "--", "hostname", "agentexec-probe").redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }
}
