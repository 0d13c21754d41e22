package io.agentexec.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.ClusterConfig;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.DriverManager;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.AddressFromURIString;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Down;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * How a node process ({@code bin/agentexec serve}, a real JVM) stops. SIGTERM: the gateway drains first (the request
 * in flight gets its whole result), then the worker, then the node leaves and the process ends, in that order (read
 * from the node's JSON log). Downed by the others: the process ends instead of lingering outside the cluster.
 */
class NodeStopTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String PG_URL = "jdbc:postgresql://127.0.0.1:5432/agentexec";
    private static final Duration WAIT = Duration.ofMinutes(3);
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    private final List<Process> processes = new ArrayList<>();
    private String schema;
    private Path dir;

    @BeforeEach
    void setUp() throws IOException {
        schema = "stop_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
        dir = Files.createTempDirectory("agentexec-stop");
    }

    @AfterEach
    void tearDown() throws Exception {
        for (Process p : processes) {
            p.destroyForcibly().waitFor(30, TimeUnit.SECONDS);
        }
        try (var c = DriverManager.getConnection(PG_URL, "agentexec", "agentexec"); var s = c.createStatement()) {
            s.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private String persistence() {
        return """
                agentexec.cluster.persistence {
                  dialect = postgresql
                  url = "%s"
                  user = agentexec
                  password = agentexec
                  schema = "%s"
                }
                """.formatted(PG_URL, schema);
    }

    private Process serve(String config, Path log) throws IOException {
        Path file = dir.resolve("node-" + UUID.randomUUID() + ".conf");
        Files.writeString(file, config);
        String java = System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
        Process p = new ProcessBuilder(java, "-Xmx512m", "-cp", System.getProperty("java.class.path"),
                AgentexecMain.class.getName(), "serve", file.toString())
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
        processes.add(p);
        return p;
    }

    /** A new sandbox that has run a block (so its container is its own and warm); its id. */
    private String sandboxThatRan(String base) throws Exception {
        HttpResponse<String> created = post(base + "/v1/sandboxes", "{\"language\":\"python\"}");
        assertEquals(201, created.statusCode(), created.body());
        String sandbox = JSON.readTree(created.body()).get("id").asText();
        HttpResponse<String> warm = post(base + "/v1/sandboxes/" + sandbox + "/executions",
                "{\"language\":\"python\",\"code\":\"print('warm')\"}");
        assertEquals(200, warm.statusCode(), warm.body());
        return sandbox;
    }

    record Ready(Process process, String base) {
    }

    /** A node holding every role (no auth, one warm container) on the given journal, ready to answer. */
    private Ready serveOneNode(String persistence, Path log) throws Exception {
        int port = freePort();
        String base = "http://127.0.0.1:" + port;
        Process node = serve("""
                agentexec.gateway.port = %d
                agentexec.gateway.metrics.port = -1
                agentexec.gateway.auth.mode = none
                pekko.remote.artery.canonical.port = 0
                agentexec.sandbox.docker.warm-pool.size = 1
                """.formatted(port) + persistence, log);
        awaitReady(base, node, log);
        return new Ready(node, base);
    }

    private void awaitReady(String base, Process node, Path log) throws Exception {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            assertTrue(node.isAlive(), () -> "the node died: " + tail(log));
            try {
                if (http.send(HttpRequest.newBuilder(URI.create(base + "/readyz")).timeout(Duration.ofSeconds(10)).GET()
                        .build(), HttpResponse.BodyHandlers.ofString()).statusCode() == 200) {
                    return;
                }
            } catch (IOException notYet) {
                // not listening yet
            }
            Thread.sleep(200);
        }
        throw new AssertionError("node not ready: " + tail(log));
    }

    private static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 60), lines.size()));
        } catch (IOException e) {
            return "(no log)";
        }
    }

    private HttpResponse<String> post(String url, String json) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(120))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(json)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    /** The messages of the node's JSON log lines, in the order it wrote them. */
    private static List<String> messages(Path log) throws IOException {
        List<String> messages = new ArrayList<>();
        for (String line : Files.readAllLines(log)) {
            if (line.startsWith("{")) {
                try {
                    messages.add(JSON.readTree(line).path("message").asText());
                } catch (IOException notJson) {
                    // a line of something else
                }
            }
        }
        return messages;
    }

    private static int indexOf(List<String> messages, String prefix, Path log) {
        for (int i = 0; i < messages.size(); i++) {
            if (messages.get(i).startsWith(prefix)) {
                return i;
            }
        }
        throw new AssertionError("no log line starting with '" + prefix + "':\n" + tail(log));
    }

    @Test
    void sigtermDrainsTheGatewayThenTheWorkerThenTheNodeLeaves() throws Exception {
        Path log = dir.resolve("node.log");
        Ready ready = serveOneNode(persistence(), log);
        Process node = ready.process();
        String base = ready.base();
        String sandbox = sandboxThatRan(base);

        // A synchronous run longer than the heartbeat interval: its 200 comes while it runs, its result at the end.
        HttpResponse<InputStream> inFlight = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/sandboxes/"
                        + sandbox + "/executions")).timeout(Duration.ofSeconds(120))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(
                        "{\"language\":\"python\",\"code\":\"import time; time.sleep(8); print('finished')\"}")).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, inFlight.statusCode());

        node.destroy(); // SIGTERM
        String body;
        try (InputStream in = inFlight.body()) {
            body = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        JsonNode result = JSON.readTree(body.strip());
        assertEquals("OK", result.path("verdict").asText(), "the request in flight got its result: " + body);
        assertEquals("finished\n", result.path("stdout").asText(), body);
        assertTrue(node.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS), () -> "the process ended: " + tail(log));

        List<String> messages = messages(log);
        int gatewayDrained = indexOf(messages, "node stopping: gateway drain done", log);
        int workerDrain = indexOf(messages, "node stopping: worker drain (", log);
        int workerDrained = indexOf(messages, "node stopping: worker drain done", log);
        int handOver = indexOf(messages, "node stopping: sharding hand-over", log);
        int leave = indexOf(messages, "node stopping: cluster leave", log);
        assertTrue(indexOf(messages, "node stopping: gateway drain (", log) < gatewayDrained);
        assertTrue(gatewayDrained < workerDrain, "the gateway drained before the worker began to:\n" + messages);
        assertTrue(workerDrained < handOver && handOver < leave, "the worker drained before the node left:\n" + messages);
        assertFalse(messages.stream().anyMatch(m -> m.startsWith("node stops without draining")), messages.toString());
    }

    /**
     * The single-node default: journal in an H2 file, gateway and worker in one process. Its drain records the live
     * sandbox's workspace as lost; H2's own shutdown hook used to close the database under it ("Database is already
     * closed", "Failed to persist event type [...WorkspaceLost]"), and the process then waited out the drain timeout.
     */
    @Test
    void sigtermOfASingleNodeOnItsH2FileJournalRecordsWhatItsDrainDecides() throws Exception {
        Path log = dir.resolve("node.log");
        Ready ready = serveOneNode("agentexec.cluster.persistence.url = \"jdbc:h2:file:%s;DATABASE_TO_UPPER=false;"
                .formatted(dir.resolve("journal")) + "WRITE_DELAY=0\"\n", log);
        Process node = ready.process();
        String base = ready.base();
        sandboxThatRan(base);
        sandboxThatRan(base);

        long stopped = System.nanoTime();
        node.destroy(); // SIGTERM
        assertTrue(node.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS), () -> "the process ended: " + tail(log));
        long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - stopped);
        String all = Files.readString(log);
        assertFalse(all.contains("Database is already closed") || all.contains("Failed to persist"),
                () -> "the journal stayed open for the drain:\n" + tail(log));
        List<String> messages = messages(log);
        assertTrue(indexOf(messages, "node stopping: worker drain done", log)
                < indexOf(messages, "node stopping: cluster leave", log), messages::toString);
        assertTrue(messages.stream().noneMatch(m -> m.contains("did not drain within")),
                () -> "drained without waiting out its timeout (" + seconds + " s):\n" + messages);
    }

    @Test
    void aDownedNodeEndsItsProcess() throws Exception {
        int seedPort = freePort();
        AgentexecCluster seed = AgentexecCluster.start(ClusterConfig.load("""
                pekko.remote.artery.canonical.hostname = "127.0.0.1"
                pekko.remote.artery.canonical.port = %d
                agentexec.cluster.roles = "gateway"
                agentexec.cluster.seed-nodes = "pekko://agentexec@127.0.0.1:%d"
                pekko.coordinated-shutdown.run-by-jvm-shutdown-hook = off
                """.formatted(seedPort, seedPort) + persistence(), List.of()));
        try {
            Path log = dir.resolve("downed.log");
            int nodePort = freePort();
            Process node = serve("""
                    agentexec.gateway.port = %d
                    agentexec.gateway.metrics.port = -1
                    agentexec.gateway.auth.mode = none
                    agentexec.cluster.roles = "worker"
                    agentexec.cluster.seed-nodes = "pekko://agentexec@127.0.0.1:%d"
                    pekko.remote.artery.canonical.port = %d
                    agentexec.sandbox.docker.warm-pool.size = 0
                    """.formatted(freePort(), seedPort, nodePort) + persistence(), log);
            Address address = AddressFromURIString.parse("pekko://agentexec@127.0.0.1:" + nodePort);
            Cluster cluster = Cluster.get(seed.system());
            long deadline = System.nanoTime() + WAIT.toNanos();
            while (!isUp(cluster, address)) {
                assertTrue(node.isAlive(), () -> "the node died: " + tail(log));
                assertTrue(System.nanoTime() < deadline, () -> "the node never joined: " + tail(log));
                Thread.sleep(200);
            }
            cluster.manager().tell(new Down(address)); // what the split-brain resolver does to the far side
            assertTrue(node.waitFor(WAIT.toSeconds(), TimeUnit.SECONDS),
                    () -> "a downed node's process ends, it does not linger outside the cluster: " + tail(log));
        } finally {
            seed.close();
        }
    }

    private static boolean isUp(Cluster cluster, Address address) {
        for (var member : cluster.state().getMembers()) {
            if (member.address().equals(address) && member.status() == MemberStatus.up()) {
                return true;
            }
        }
        return false;
    }
}
