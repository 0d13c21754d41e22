package io.agentexec.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
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
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
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
 * workers' runs land on two daemons. Then a third worker is added, and a worker (the one placement chose for a
 * sandbox) is killed with its daemon (SIGKILL) while it runs one-offs and that sandbox's run: the one-offs complete on
 * the other workers, the sandbox answers SANDBOX_LOST and its next run says its workspace was lost; a replacement
 * starts on the same daemon; and down leaves nothing: no process, mount, socket, container, directory or schema of
 * the cluster.
 *
 * Last, a worker and its dockerd are killed again and brought back at once on the same daemon: the returning worker
 * removes the containers its killed incarnation left there.
 *
 * <p>The worker killed is the one a sandbox was placed on, never a worker named in advance: placement picks at
 * random among equally free workers, and waiting for one in particular failed on CI's machine (16 sandboxes, the
 * tenant's quota, none on worker 3; the test then left them live, and the next test met the quota too).
 *
 * <p>Not here: a graceful stop's hand-over and keys on every node ({@link ClusterOperationsTest}).
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
    /** A container's id in a process's cgroup path (cgroupfs: /docker/ID, systemd: docker-ID.scope). */
    private static final Pattern CONTAINER_ID = Pattern.compile("[0-9a-f]{64}");

    private LocalCluster cluster;
    private JsonNode state;
    /** Every pid the cluster had (nodes, dockerds): none may run after down. */
    private final Set<Long> pids = new HashSet<>();
    /** The worker lost in the kill test (the one its first sandbox was placed on), replaced in the next test. */
    private int lost;
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
        JsonNode oneOff = ok(cluster.post("/v1/executions", python("import socket; print(socket.gethostname())")));
        assertEquals("OK", oneOff.get("verdict").asText(), oneOff::toString);

        // Sandboxes until both daemons ran one (placement picks at random among equally free workers): each run's
        // container is on exactly one worker's daemon, never on the main one.
        Map<String, String> daemonOfSandbox = new TreeMap<>();
        for (int i = 0; i < 12 && new HashSet<>(daemonOfSandbox.values()).size() < 2; i++) {
            String id = createSandbox();
            JsonNode run = ok(cluster.post("/v1/sandboxes/" + id + "/executions", python("import socket; print(socket.gethostname())")));
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
            deleteSandbox(id);
        }
    }

    @Test
    @Order(2)
    void aWorkerAddedOnADaemonOfItsOwn() throws Exception {
        LocalCluster.Result added = cluster.addWorker();
        assertEquals(0, added.exitCode(), cluster::logTail);
        remember(added.json());
        assertEquals("3 worker(s) reachable", added.json().get("ready").asText());
        JsonNode third = cluster.worker(3);
        assertTrue(third.get("alive").asBoolean() && third.get("dockerdAlive").asBoolean(), third::toString);
        assertEquals(3, Set.of(cluster.dockerHost(1), cluster.dockerHost(2), cluster.dockerHost(3)).size());
        assertEquals(imageId(null), imageId(cluster.dockerHost(3)), "the sandbox image, copied into the new daemon");
    }

    /**
     * SIGKILL of a worker and its dockerd at once, as a machine lost would, while it runs one-offs and a sandbox's
     * run: the one-offs complete on the other workers (the code, which names itself in /proc/self/comm, was seen
     * running in a container of the lost worker's daemon before the kill, and its result comes from a container that is
     * not one of that daemon's), the sandbox's run ends SANDBOX_LOST (503 "unavailable", the code may have run)
     * and its next run is in a fresh workspace, said so; a sandbox on another worker keeps its files.
     */
    @Test
    @Order(3)
    void killOfAWorkerAndItsDaemonLosesNoOneOffAndSaysSandboxLost() throws Exception {
        // A sandbox and one on another worker, each with a file in its workspace. The first one's worker is the one
        // lost: whichever placement chose (it picks at random among equally free workers), so that the test never
        // waits for placement to choose one worker in particular.
        Placed sandboxes = twoSandboxesOnTwoWorkers();
        lost = sandboxes.worker();
        String lostDaemon = cluster.dockerHost(lost);
        String doomed = sandboxes.onWorker();
        String kept = sandboxes.elsewhere();

        // In flight: the doomed sandbox's run, then one-offs one at a time (each placed once the previous one runs,
        // so that placement sees the capacity they take) until one runs on the lost worker. 12 slots: all run at once.
        ExecutorService callers = Executors.newFixedThreadPool(12);
        try {
            String sandboxToken = token();
            String doomedId = doomed;
            Future<LocalCluster.Reply> sandboxRun = callers.submit(() -> cluster.post(
                    "/v1/sandboxes/" + doomedId + "/executions", python(named(sandboxToken) + "time.sleep(120)")));
            assertTrue(runningContainers(lostDaemon).contains(awaitRunning(sandboxToken)), "the doomed sandbox runs on worker " + lost);
            Map<String, Future<LocalCluster.Reply>> oneOffs = new TreeMap<>();
            Set<String> lostOneOffs = new TreeSet<>();
            Map<String, String> placed = new TreeMap<>();
            for (int i = 0; i < 10 && lostOneOffs.isEmpty(); i++) {
                String t = token();
                oneOffs.put(t, callers.submit(() -> cluster.post("/v1/executions",
                        python(named(t) + "time.sleep(30); print(socket.gethostname())"))));
                String container = awaitRunning(t);
                placed.put(t, container);
                if (runningContainers(lostDaemon).contains(container)) {
                    lostOneOffs.add(t);
                }
            }
            assertFalse(lostOneOffs.isEmpty(), () -> "no one-off of 10 was placed on worker " + lost + ": " + placed);
            Set<String> thirdContainers = containerIds(lostDaemon);

            LocalCluster.Result killed = cluster.killWorker(lost);
            assertEquals(0, killed.exitCode(), cluster::logTail);
            long node = killed.json().get("nodePid").asLong();
            long dockerd = killed.json().get("dockerdPid").asLong();
            assertFalse(alive(node), "the node JVM is gone");
            assertFalse(alive(dockerd), "its dockerd is gone");

            for (Map.Entry<String, Future<LocalCluster.Reply>> e : oneOffs.entrySet()) {
                JsonNode result = ok(e.getValue().get(5, TimeUnit.MINUTES));
                assertEquals("OK", result.get("verdict").asText(), result::toString);
                String ranIn = result.get("stdout").asText().strip();
                if (lostOneOffs.contains(e.getKey())) {
                    assertFalse(thirdContainers.contains(ranIn), () -> e.getKey() + " was running on worker " + lost
                            + " when it was killed, and completed in " + ranIn + ", again on that worker's daemon?");
                }
            }
            assertAnsweredLost(sandboxRun);
        } finally {
            callers.shutdownNow();
        }
        cluster.awaitReady(2, CHANGE_SEEN);

        assertNextRunIsInAFreshWorkspaceSaidLost(doomed);
        JsonNode survivor = ok(cluster.post("/v1/sandboxes/" + kept + "/executions", python("print(open('f.txt').read())")));
        assertEquals("kept", survivor.get("stdout").asText().strip(), survivor::toString);
        deleteSandbox(doomed);
        deleteSandbox(kept);
    }

    /** A replacement for the killed worker on the same daemon (what a rolling restart's replacement does too). */
    @Test
    @Order(4)
    void aReplacementStartsOnTheSameDaemon() throws Exception {
        JsonNode before = cluster.worker(lost);
        LocalCluster.Result again = cluster.startWorker(lost);
        assertEquals(0, again.exitCode(), cluster::logTail);
        remember(again.json());
        assertEquals("3 worker(s) reachable", again.json().get("ready").asText());
        JsonNode back = cluster.worker(lost);
        assertTrue(back.get("alive").asBoolean() && back.get("dockerdAlive").asBoolean(), back::toString);
        assertEquals(before.get("dataRoot").asText(), back.get("dataRoot").asText(), "on the same data root");
        assertEquals("OK", ok(cluster.post("/v1/executions", python("print(3)"))).get("verdict").asText());
    }

    /**
     * Issue 11, item 7: worker K (a sandbox's) and its dockerd killed with SIGKILL (by their pids, as the machine's
     * OOM killer or a crash would) and brought back at once with {@code cluster-up.sh --worker K}, as a supervisor restarting a
     * crashed worker would: the node starts although the killed JVM's threads may still be closing its ports (it
     * failed: "port ... is in use"), the daemon starts again on its data (a SIGKILLed dockerd leaves its containerd's
     * pid file naming a process that is a zombie for a moment, then anyone's pid: the daemon took it for its
     * containerd still running and gave up waiting for its socket), and the returning worker, a new incarnation on
     * the same daemon, removes every container the killed one left there (counted through the daemon's socket before
     * the kill and after the return); the sandbox that ran there answers that it was lost, then runs in a fresh
     * workspace.
     */
    @Test
    @Order(5)
    void aWorkerKilledWithItsDaemonAndBroughtBackAtOnceReapsWhatItsKilledIncarnationLeft() throws Exception {
        cluster.awaitReady(3, CHANGE_SEEN);
        // A sandbox with a file in its workspace; the worker placement chose for it is the one killed.
        Placed sandbox = sandbox();
        String doomed = sandbox.onWorker();
        int k = sandbox.worker();
        assertEquals(0, cluster.status().exitCode(), cluster::logTail);
        JsonNode victim = cluster.worker(k);
        assertTrue(victim.get("alive").asBoolean() && victim.get("dockerdAlive").asBoolean(), victim::toString);
        String daemon = victim.get("dockerHost").asText();
        long node = victim.get("pid").asLong();
        long dockerd = victim.get("dockerdPid").asLong();

        ExecutorService caller = Executors.newSingleThreadExecutor();
        try {
            // In flight at the kill: a run of the doomed sandbox.
            String t = token();
            String doomedId = doomed;
            Future<LocalCluster.Reply> inFlight = caller.submit(() -> cluster.post(
                    "/v1/sandboxes/" + doomedId + "/executions", python(named(t) + "time.sleep(120)")));
            String running = awaitRunning(t);
            assertTrue(runningContainers(daemon).contains(running), "the doomed sandbox runs on worker " + k);
            // Worker K's containers there: the sandbox's, its warm pool's.
            Map<String, String> before = new TreeMap<>(managedContainers(daemon));
            before.values().removeIf(owner -> ownerPid(owner) != node);
            assertTrue(before.containsKey(running.substring(0, 12)), () -> "the sandbox's container is worker " + k + "'s: " + before);

            Command kill = command(List.of("kill", "-KILL", Long.toString(node), Long.toString(dockerd)));
            assertEquals(0, kill.exitCode, kill.out);
            awaitGone(node);
            awaitGone(dockerd);
            LocalCluster.Result back = cluster.startWorker(k);
            assertEquals(0, back.exitCode(), () -> "cluster-up.sh --worker " + k + " right after kill -9 of worker " + k
                    + " and its dockerd:\n" + cluster.logTail());
            remember(back.json());
            JsonNode returned = cluster.worker(k);
            assertTrue(returned.get("alive").asBoolean() && returned.get("dockerdAlive").asBoolean(), returned::toString);
            assertEquals(daemon, returned.get("dockerHost").asText(), "the same daemon");
            assertEquals(victim.get("dataRoot").asText(), returned.get("dataRoot").asText(), "on its existing data");
            long newNode = returned.get("pid").asLong();
            assertNotEquals(node, newNode, "a new worker node");

            // The returning worker removes what the killed one left (nothing else here removes containers).
            long deadline = System.nanoTime() + CHANGE_SEEN.toNanos();
            Set<String> left = new TreeSet<>(before.keySet());
            while (!left.isEmpty() && System.nanoTime() < deadline) {
                Thread.sleep(500);
                left.retainAll(containerIds(daemon));
            }
            Map<String, String> after = managedContainers(daemon);
            System.out.println("REAPER: worker " + k + "'s daemon held " + before.size() + " managed container(s) of the killed"
                    + " node (pid " + node + ") " + before.keySet() + "; after the return (node pid " + newNode + "): "
                    + after.size() + " managed, " + left.size() + " of them the killed node's " + left
                    + "; owners now " + new TreeSet<>(after.values()) + "; the returning node's log says: "
                    + Files.readAllLines(Path.of(returned.get("log").asText())).stream()
                            .filter(l -> l.contains("container(s)")).toList());
            Set<String> leftover = left;
            assertEquals(Set.of(), leftover, () -> "containers of the killed worker still on its daemon " + CHANGE_SEEN
                    + " after its return: " + leftover + "\n" + cluster.logTail());
            for (String owner : after.values()) {
                assertEquals(newNode, ownerPid(owner), () -> "only the new node's containers: " + after);
            }

            assertAnsweredLost(inFlight);
        } finally {
            caller.shutdownNow();
        }
        assertNextRunIsInAFreshWorkspaceSaidLost(doomed);
        deleteSandbox(doomed);
    }

    @Test
    @Order(6)
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

    /**
     * The run that was in flight on the killed worker ends SANDBOX_LOST: "unavailable", saying it was lost. A
     * synchronous run past the heartbeat interval has its 200 committed, so the error document ends its body (README,
     * the gateway); a shorter one is answered 503.
     */
    private static void assertAnsweredLost(Future<LocalCluster.Reply> run) throws Exception {
        LocalCluster.Reply lost = run.get(5, TimeUnit.MINUTES);
        assertTrue(lost.status() == 200 || lost.status() == 503, lost::body);
        assertEquals("unavailable", lost.errorCode(), lost::body);
        assertTrue(lost.body().contains("lost"), lost::body);
    }

    /** The sandbox's next run finds none of its files (a fresh workspace), and its caller is told the old one was lost. */
    private void assertNextRunIsInAFreshWorkspaceSaidLost(String sandboxId) {
        JsonNode again = ok(cluster.post("/v1/sandboxes/" + sandboxId + "/executions",
                python("import os; print(os.path.exists('f.txt'))")));
        assertEquals("False", again.get("stdout").asText().strip(), "a fresh workspace: " + again);
        assertTrue(again.path("note").asText().contains("lost"), () -> "the caller is told: " + again);
    }

    /** A sandbox, the index of the worker it runs on, and (when asked for) a sandbox on another worker. */
    private record Placed(String onWorker, int worker, String elsewhere) {
    }

    /** A sandbox with a file in its workspace, and the worker placement chose for it. */
    private Placed sandbox() throws Exception {
        String id = createSandbox();
        return new Placed(id, workerOf(id, runWritingAFile(id)), null);
    }

    /**
     * A sandbox, and sandboxes until one runs on another worker than the first: each with a file in its workspace.
     * The ones on the first one's worker are deleted at once, so that the tries never meet the tenant's live-sandbox
     * quota (16); a failure says where each try ran and how each worker saw its load.
     */
    private Placed twoSandboxesOnTwoWorkers() throws Exception {
        Placed first = sandbox();
        List<String> tries = new ArrayList<>(List.of(first.onWorker() + " on worker " + first.worker()));
        String elsewhere = null;
        for (int i = 0; i < 30 && elsewhere == null; i++) {
            String id = createSandbox();
            int worker = workerOf(id, runWritingAFile(id));
            tries.add(id + " on worker " + worker);
            if (worker != first.worker()) {
                elsewhere = id;
            } else {
                deleteSandbox(id);
            }
        }
        System.out.println("PLACEMENT: " + tries);
        String found = elsewhere;
        assertNotNull(found, () -> "every sandbox was placed on worker " + first.worker() + ": " + tries
                + "\nthe workers' loads: " + workerLoads() + "\n" + cluster.logTail());
        return new Placed(first.onWorker(), first.worker(), elsewhere);
    }

    /** Runs code in the sandbox that writes f.txt; the container it ran in (its host name). */
    private String runWritingAFile(String sandboxId) {
        JsonNode run = ok(cluster.post("/v1/sandboxes/" + sandboxId + "/executions", python(
                "import socket; open('f.txt', 'w').write('kept'); print(socket.gethostname())")));
        return run.get("stdout").asText().strip();
    }

    /** The index of the live worker whose daemon holds the container (exactly one does). */
    private int workerOf(String sandboxId, String container) throws Exception {
        List<Integer> holders = new ArrayList<>();
        for (int k : cluster.workerIndexes()) {
            if (containerIds(cluster.dockerHost(k)).contains(container)) {
                holders.add(k);
            }
        }
        assertEquals(1, holders.size(), () -> sandboxId + "'s container " + container + " on exactly one worker's daemon: "
                + holders);
        return holders.get(0);
    }

    /** Sandboxes this test made and has not deleted: removed after each test, so that one failure cannot cascade. */
    private final Set<String> liveSandboxes = new TreeSet<>();

    private String createSandbox() {
        String id = ok(cluster.post("/v1/sandboxes", "{\"language\":\"python\"}")).get("id").asText();
        liveSandboxes.add(id);
        return id;
    }

    private void deleteSandbox(String id) {
        LocalCluster.Reply r = cluster.delete("/v1/sandboxes/" + id);
        assertTrue(r.status() == 200 || r.status() == 204, () -> "DELETE sandbox " + id + ": " + r.status() + " " + r.body());
        liveSandboxes.remove(id);
    }

    @AfterEach
    void deleteWhatATestLeft() {
        for (String id : List.copyOf(liveSandboxes)) {
            try {
                cluster.delete("/v1/sandboxes/" + id);
            } catch (RuntimeException e) {
                System.err.println("could not delete sandbox " + id + " after the test: " + e);
            }
        }
        liveSandboxes.clear();
    }

    /** Each live worker's own gauges (its metrics listener on loopback): slots, running, queued, draining. */
    private String workerLoads() {
        StringBuilder out = new StringBuilder();
        for (JsonNode w : cluster.state().get("workers")) {
            out.append("\n  worker ").append(w.get("index").asInt()).append(": ");
            try {
                java.net.http.HttpResponse<String> r = java.net.http.HttpClient.newHttpClient().send(
                        java.net.http.HttpRequest.newBuilder(java.net.URI.create(
                                "http://127.0.0.1:" + w.get("metricsPort").asInt() + "/metrics"))
                                .timeout(Duration.ofSeconds(10)).build(),
                        java.net.http.HttpResponse.BodyHandlers.ofString());
                out.append(r.body().lines().filter(l -> l.startsWith("agentexec_worker_")).collect(Collectors.joining("; ")));
            } catch (Exception e) {
                out.append("(no metrics: ").append(e).append(')');
            }
        }
        return out.toString();
    }

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

    /** A run's request body. */
    private static String python(String code) {
        return JSON.createObjectNode().put("language", "python").put("code", code).toString();
    }

    /** A fresh name a run gives its process (/proc/self/comm: at most 15 bytes), seen from this machine's /proc. */
    private static String token() {
        return "aec" + UUID.randomUUID().toString().replace("-", "").substring(0, 8);
    }

    /** Python that names its process {@code token} first, so that this test can find where it runs. */
    private static String named(String token) {
        return "import os, socket, time; open('/proc/self/comm', 'w').write('" + token + "'); ";
    }

    /** A 200/201 reply's document (not an error document after a committed 200), or the failure with the reply. */
    private static JsonNode ok(LocalCluster.Reply r) {
        assertTrue((r.status() == 200 || r.status() == 201) && r.errorCode().isEmpty(), () -> r.status() + " " + r.body());
        return r.json();
    }

    /** Waits (bounded) until the run that named its process {@code token} runs; the full id of its container. */
    private static String awaitRunning(String token) throws Exception {
        long deadline = System.nanoTime() + CHANGE_SEEN.toNanos();
        while (System.nanoTime() < deadline) {
            try (DirectoryStream<Path> procs = Files.newDirectoryStream(Path.of("/proc"), "[0-9]*")) {
                for (Path proc : procs) {
                    try {
                        if (Files.readString(proc.resolve("comm")).strip().equals(token)) {
                            Matcher m = CONTAINER_ID.matcher(Files.readString(proc.resolve("cgroup")));
                            assertTrue(m.find(), () -> token + " runs outside any container: " + proc);
                            return m.group();
                        }
                    } catch (IOException gone) {
                        // the process ended meanwhile
                    }
                }
            }
            Thread.sleep(200);
        }
        throw new AssertionError("the run named " + token + " was never seen running within " + CHANGE_SEEN);
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

    /** Full ids of the running containers of a daemon. */
    private static Set<String> runningContainers(String dockerHost) throws Exception {
        Command c = command(docker(dockerHost, "ps", "-q", "--no-trunc"));
        assertEquals(0, c.exitCode, c.out);
        return c.out.lines().map(String::strip).filter(l -> !l.isEmpty()).collect(Collectors.toSet());
    }

    /** Full ids of a daemon's agentexec-managed containers (any state), with their owner labels (host/pid/start). */
    private static Map<String, String> managedContainers(String dockerHost) throws Exception {
        Command c = command(docker(dockerHost, "ps", "-a", "--no-trunc", "--filter", "label=io.agentexec.managed=true",
                "--format", "{{.ID}} {{.Label \"io.agentexec.owner\"}}"));
        assertEquals(0, c.exitCode, c.out);
        Map<String, String> owners = new TreeMap<>();
        for (String line : c.out.lines().map(String::strip).filter(l -> !l.isEmpty()).toList()) {
            String[] f = line.split(" ", 2);
            owners.put(f[0].substring(0, 12), f.length > 1 ? f[1] : "");
        }
        return owners;
    }

    /** The JVM pid in an owner label (host/pid/start), or -1. */
    private static long ownerPid(String owner) {
        String[] parts = owner.split("/");
        try {
            return parts.length == 3 ? Long.parseLong(parts[1]) : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    /** Waits (bounded) until pid no longer runs (a zombie does not). */
    private static void awaitGone(long pid) throws InterruptedException {
        long deadline = System.nanoTime() + CHANGE_SEEN.toNanos();
        while (alive(pid)) {
            assertTrue(System.nanoTime() < deadline, () -> "pid " + pid + " still runs " + CHANGE_SEEN + " after SIGKILL");
            Thread.sleep(50);
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
