package io.agentexec.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
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
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The many-daemon cluster of {@code scripts/cluster-up.sh} and {@code scripts/cluster-down.sh}, run as an operator
 * (and the operations tests) would: a gateway node and two workers, each worker on a dockerd of its own (its own
 * data root, exec root, socket), PostgreSQL as the journal, mutual TLS. Code runs through the gateway; the
 * container that ran it is found on exactly one worker's daemon and never on the machine's main one, and the two
 * workers' runs land on two daemons. Then one more worker is added, killed with its daemon (SIGKILL), started
 * again on the same daemon, a worker is stopped gracefully, and down leaves nothing: no process, mount, container,
 * directory or schema of the cluster.
 *
 * <p>A JUnit test rather than a shell test: it runs in the module build with the others (and its helper,
 * {@link LocalCluster}, is what the operations tests start their clusters with), and JUnit's report says which
 * step failed. The nodes run from this JVM's class path: the node jar bin/agentexec uses is built after the tests.
 * The cluster is removed in {@link #down()} and by a shutdown hook, whatever happened.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ClusterScriptsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String IMAGE = "agentexec/python:bookworm";
    private static final String PG_URL = "jdbc:postgresql://127.0.0.1:5432/agentexec";
    /** Bounded waits for the cluster to see a change (failure detection on a loaded machine). */
    private static final Duration CHANGE_SEEN = Duration.ofMinutes(3);

    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    private LocalCluster cluster;
    private JsonNode state;
    /** Every pid the cluster had (nodes, dockerds): none may run after down. */
    private final Set<Long> pids = new HashSet<>();
    /** The worker nodes' pids: the owners of their containers. */
    private final Set<Long> workerPids = new HashSet<>();

    @BeforeAll
    void up() throws Exception {
        assertEquals(0, command(List.of("docker", "info")).exitCode,
                "the main Docker daemon must answer (scripts/setup.sh starts it)");
        // The smoke test copies the one image it runs into each daemon; the default set is four (README).
        cluster = new LocalCluster(Map.of("AGENTEXEC_CLUSTER_IMAGES", IMAGE));
        LocalCluster.Result up = cluster.up(2);
        assertEquals(0, up.exitCode(), () -> "cluster-up.sh 2 failed:\n" + cluster.logTail());
        state = up.json();
        assertNotNull(state, () -> "cluster-up.sh printed no JSON: " + up.stdout());
        remember(state);
    }

    @AfterAll
    void down() {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    @Order(1)
    void twoWorkersOnTwoDaemonsRunCodeThroughTheGateway() throws Exception {
        assertEquals("2 worker(s) reachable", state.get("ready").asText());
        assertEquals(cluster.gatewayUrl(), state.get("gateway").get("url").asText());
        JsonNode workers = state.get("workers");
        assertEquals(2, workers.size(), state::toString);
        long mainDockerd = Long.parseLong(Files.readString(Path.of("/var/run/docker.pid")).strip());
        Set<String> sockets = new HashSet<>();
        for (JsonNode w : workers) {
            assertTrue(w.get("alive").asBoolean() && w.get("dockerdAlive").asBoolean(), w::toString);
            String socket = w.get("dockerHost").asText();
            sockets.add(socket);
            long dockerd = w.get("dockerdPid").asLong();
            assertNotEquals(mainDockerd, dockerd, "a worker's dockerd is not the main one");
            // The daemon's own roots, socket and pid file, no bridge, no iptables.
            List<String> args = procList(dockerd, "cmdline");
            for (String wanted : List.of("--data-root", w.get("dataRoot").asText(), "--exec-root", w.get("execRoot").asText(),
                    "-H", socket, "--bridge=none", "--iptables=false", "--ip-masq=false", "--pidfile")) {
                assertTrue(args.contains(wanted), () -> "dockerd of " + w.get("name") + " runs with " + wanted + ": " + args);
            }
            // The worker node talks to that daemon, and only the worker role runs there.
            List<String> environment = procList(w.get("pid").asLong(), "environ");
            assertTrue(environment.contains("DOCKER_HOST=" + socket), () -> w.get("name") + "'s DOCKER_HOST: " + environment);
            assertTrue(environment.contains("AGENTEXEC_ROLES=worker"), environment::toString);
            assertEquals(imageId(null), imageId(socket), "the sandbox image, copied from the main daemon");
        }
        assertEquals(2, sockets.size(), "two daemons");
        assertTrue(procList(state.get("gateway").get("pid").asLong(), "environ").contains("AGENTEXEC_ROLES=gateway"));

        // A one-off execution through the gateway.
        JsonNode oneOff = post("/v1/executions", "{\"language\":\"python\",\"code\":\"import socket; print(socket.gethostname())\"}");
        assertEquals("OK", oneOff.get("verdict").asText(), oneOff::toString);

        // Sandboxes until both daemons ran one (placement picks at random among equally free workers): each run's
        // container is on exactly one worker's daemon, never on the main one.
        Map<String, String> daemonOfSandbox = new TreeMap<>();
        for (int i = 0; i < 12 && new HashSet<>(daemonOfSandbox.values()).size() < 2; i++) {
            String id = post("/v1/sandboxes", "{\"language\":\"python\"}").get("id").asText();
            JsonNode run = post("/v1/sandboxes/" + id + "/executions",
                    "{\"language\":\"python\",\"code\":\"import socket; print(socket.gethostname())\"}");
            assertEquals("OK", run.get("verdict").asText(), run::toString);
            String hostname = run.get("stdout").asText().strip();
            List<String> holders = new ArrayList<>();
            for (String socket : sockets) {
                if (containerIds(socket).contains(hostname)) {
                    holders.add(socket);
                }
            }
            assertEquals(1, holders.size(), () -> "container " + hostname + " on exactly one worker daemon: " + holders);
            assertFalse(containerIds(null).contains(hostname), "never on the main daemon");
            daemonOfSandbox.put(id, holders.get(0));
        }
        assertEquals(sockets, new HashSet<>(daemonOfSandbox.values()), () -> "runs on both daemons: " + daemonOfSandbox);
        for (String id : daemonOfSandbox.keySet()) {
            delete("/v1/sandboxes/" + id);
        }
    }

    @Test
    @Order(2)
    void aWorkerAddedKilledWithItsDaemonAndStartedAgainOnIt() throws Exception {
        LocalCluster.Result added = cluster.addWorker();
        assertEquals(0, added.exitCode(), cluster::logTail);
        remember(added.json());
        assertEquals("3 worker(s) reachable", added.json().get("ready").asText());
        JsonNode third = worker(added.json(), 3);
        assertTrue(third.get("alive").asBoolean() && third.get("dockerdAlive").asBoolean(), third::toString);

        LocalCluster.Result killed = cluster.killWorker(3);
        assertEquals(0, killed.exitCode(), cluster::logTail);
        long node = killed.json().get("nodePid").asLong();
        long dockerd = killed.json().get("dockerdPid").asLong();
        assertEquals(third.get("pid").asLong(), node);
        assertFalse(alive(node), "the node JVM is gone");
        assertFalse(alive(dockerd), "its dockerd is gone");
        awaitReady("2 worker(s) reachable");
        assertEquals("OK", post("/v1/executions", "{\"language\":\"python\",\"code\":\"print(2)\"}").get("verdict").asText());

        LocalCluster.Result again = cluster.startWorker(3);
        assertEquals(0, again.exitCode(), cluster::logTail);
        remember(again.json());
        assertEquals("3 worker(s) reachable", again.json().get("ready").asText());
        JsonNode back = worker(again.json(), 3);
        assertNotEquals(node, back.get("pid").asLong(), "a new node JVM");
        assertNotEquals(dockerd, back.get("dockerdPid").asLong(), "its dockerd started again");
        assertEquals(third.get("dataRoot").asText(), back.get("dataRoot").asText(), "on the same data root");
    }

    @Test
    @Order(3)
    void aWorkerStoppedGracefully() throws Exception {
        JsonNode first = worker(cluster.status().json(), 1);
        LocalCluster.Result stopped = cluster.stopWorker(1);
        assertEquals(0, stopped.exitCode(), cluster::logTail);
        assertEquals("stopped", stopped.json().get("node").asText(), "exited on SIGTERM, not killed: " + stopped.json());
        assertEquals("stopped", stopped.json().get("dockerd").asText(), stopped.json()::toString);
        assertEquals(0, stopped.json().get("leftoverContainers").asInt(), "the node removed its containers on the way out");
        assertFalse(alive(first.get("pid").asLong()));
        assertFalse(alive(first.get("dockerdPid").asLong()));
        awaitReady("2 worker(s) reachable");
        assertEquals("OK", post("/v1/executions", "{\"language\":\"python\",\"code\":\"print(3)\"}").get("verdict").asText());
    }

    @Test
    @Order(4)
    void downLeavesNothing() throws Exception {
        LocalCluster.Result down = cluster.down();
        assertEquals(0, down.exitCode(), cluster::logTail);
        assertEquals(cluster.name, down.json().get("down").asText());

        for (long pid : pids) {
            assertFalse(alive(pid), "pid " + pid + " of the cluster still runs");
        }
        String dir = cluster.dir.toString();
        try (Stream<ProcessHandle> all = ProcessHandle.allProcesses()) {
            List<String> ours = all.filter(p -> procList(p.pid(), "cmdline").stream().anyMatch(a -> a.contains(dir))
                            || procList(p.pid(), "environ").stream().anyMatch(e -> e.startsWith("AGENTEXEC_CLUSTER_NODE=" + dir)))
                    .map(p -> p.pid() + " " + procList(p.pid(), "cmdline")).toList();
            assertEquals(List.of(), ours, "no process of the cluster (node, dockerd, containerd, shim)");
        }
        String mounts = Files.readString(Path.of("/proc/self/mountinfo"));
        assertFalse(mounts.contains(dir), () -> "no mount below " + dir + ":\n" + mounts);
        assertFalse(Files.exists(cluster.dir), "the directory is gone");
        try (var c = DriverManager.getConnection(PG_URL, "agentexec", "agentexec");
             var s = c.prepareStatement("SELECT count(*) FROM information_schema.schemata WHERE schema_name = ?")) {
            s.setString(1, "agentexec_cluster_" + cluster.name);
            try (var r = s.executeQuery()) {
                r.next();
                assertEquals(0, r.getInt(1), "the schema is dropped");
            }
        }
        // The main daemon never held a container of the cluster's workers.
        Command owners = command(List.of("docker", "ps", "-a", "--filter", "label=io.agentexec.managed=true",
                "--format", "{{.Label \"io.agentexec.owner\"}}"));
        assertEquals(0, owners.exitCode);
        for (String owner : owners.out.lines().toList()) {
            String[] parts = owner.split("/");
            assertFalse(parts.length == 3 && workerPids.contains(Long.parseLong(parts[1])),
                    () -> "a container of a worker on the main daemon: " + owner);
        }

        LocalCluster.Result again = cluster.down();
        assertEquals(0, again.exitCode(), () -> "down again changes nothing and succeeds:\n" + cluster.logTail());
    }

    // ---- helpers

    private void remember(JsonNode s) {
        pids.add(s.get("gateway").get("pid").asLong());
        for (JsonNode w : s.get("workers")) {
            if (w.get("alive").asBoolean()) {
                pids.add(w.get("pid").asLong());
                workerPids.add(w.get("pid").asLong());
            }
            if (w.get("dockerdAlive").asBoolean()) {
                pids.add(w.get("dockerdPid").asLong());
            }
        }
    }

    private static JsonNode worker(JsonNode s, int index) {
        for (JsonNode w : s.get("workers")) {
            if (w.get("index").asInt() == index) {
                return w;
            }
        }
        throw new AssertionError("no worker " + index + " in " + s);
    }

    private void awaitReady(String detail) throws Exception {
        long deadline = System.nanoTime() + CHANGE_SEEN.toNanos();
        String last = "";
        while (System.nanoTime() < deadline) {
            HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(cluster.gatewayUrl() + "/readyz"))
                    .timeout(Duration.ofSeconds(30)).GET().build(), HttpResponse.BodyHandlers.ofString());
            last = r.body();
            if (r.statusCode() == 200 && JSON.readTree(last).get("detail").asText().startsWith(detail)) {
                return;
            }
            Thread.sleep(500);
        }
        throw new AssertionError("readyz never said '" + detail + "' within " + CHANGE_SEEN + ": " + last);
    }

    private JsonNode post(String path, String body) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(cluster.gatewayUrl() + path))
                .timeout(Duration.ofMinutes(3)).header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(body)).build(), HttpResponse.BodyHandlers.ofString());
        assertTrue(r.statusCode() == 200 || r.statusCode() == 201, () -> path + ": " + r.statusCode() + " " + r.body());
        return JSON.readTree(r.body());
    }

    private void delete(String path) throws Exception {
        http.send(HttpRequest.newBuilder(URI.create(cluster.gatewayUrl() + path)).timeout(Duration.ofSeconds(60))
                .DELETE().build(), HttpResponse.BodyHandlers.discarding());
    }

    /**
     * Whether pid runs: a zombie does not (ProcessHandle counts it alive; the nodes are not this JVM's children, and
     * this machine's init reaps orphans when it gets to it).
     */
    private static boolean alive(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            String state = stat.substring(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
            return !state.equals("Z") && !state.equals("X");
        } catch (IOException | RuntimeException gone) {
            return false;
        }
    }

    /** A NUL-separated file of /proc/PID (cmdline, environ) as a list; empty when the process is gone. */
    private static List<String> procList(long pid, String file) {
        try {
            String text = new String(Files.readAllBytes(Path.of("/proc", Long.toString(pid), file)), StandardCharsets.UTF_8);
            return List.of(text.split("\0"));
        } catch (IOException gone) {
            return List.of();
        }
    }

    /** Short ids (the containers' hostnames) of the containers of a daemon; null: the main daemon. */
    private static Set<String> containerIds(String dockerHost) throws Exception {
        Command c = command(docker(dockerHost, "ps", "-aq"));
        assertEquals(0, c.exitCode, c.out);
        return c.out.lines().map(String::strip).filter(l -> !l.isEmpty()).collect(Collectors.toSet());
    }

    private static String imageId(String dockerHost) throws Exception {
        Command c = command(docker(dockerHost, "image", "inspect", "-f", "{{.Id}}", IMAGE));
        assertEquals(0, c.exitCode, () -> IMAGE + " on " + (dockerHost == null ? "the main daemon" : dockerHost) + ": " + c.out);
        return c.out.strip();
    }

    private static List<String> docker(String dockerHost, String... args) {
        List<String> argv = new ArrayList<>(List.of("docker"));
        if (dockerHost != null) {
            argv.addAll(List.of("-H", dockerHost));
        }
        argv.addAll(List.of(args));
        return argv;
    }

    private record Command(int exitCode, String out) {
    }

    private static Command command(List<String> argv) throws Exception {
        Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(2, TimeUnit.MINUTES), () -> argv + " did not end");
        return new Command(p.exitValue(), out);
    }
}
