package io.agentexec.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Issue 11's operations tests on the many-daemon cluster ({@link LocalCluster}: a gateway node and two workers, each
 * worker on a dockerd of its own, PostgreSQL as the journal), one cluster for the class, made with API keys on:
 * <ol>
 *   <li>keys: a key made with {@code agentexec tenant create} works on every node's API; after
 *       {@code tenant revoke} every node refuses it (401) within the refresh interval (plus slack for this loaded
 *       machine; the measured time is printed);</li>
 *   <li>rolling restart: while callers send one-offs and sandboxes each append to and check a file of their
 *       workspace, each worker in turn gets SIGTERM (it drains: its sandboxes move with their files) and a
 *       replacement starts on its daemon: every accepted execution ends OK, no workspace is lost, no run is
 *       repeated (each sandbox's append log has each line once); the counts are printed.</li>
 * </ol>
 * (A worker killed with its dockerd and brought back on the same daemon removing what it left: {@link ClusterScriptsTest}.)
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ClusterOperationsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String IMAGE = "agentexec/python:bookworm";
    /** The nodes' agentexec.gateway.auth.refresh-interval, set explicitly so that the test states what it checks. */
    private static final Duration REFRESH = Duration.ofSeconds(2);
    /** Added to REFRESH for a node to be seen refusing: a request's round trip on this shared 2-core machine. */
    private static final Duration REFRESH_SLACK = Duration.ofSeconds(10);
    private static final Duration CHANGE_SEEN = Duration.ofMinutes(3);
    private static final int SANDBOXES = 6;
    private static final int ONE_OFF_CALLERS = 2;
    /** Pacing of each sandbox's runs (a load, not synchronisation). */
    private static final long PACE_MS = 300;

    private LocalCluster cluster;
    /** The load's tenant's key (the keys test revokes a tenant of its own). */
    private Map<String, String> auth;

    @BeforeAll
    void up() throws Exception {
        cluster = new LocalCluster(Map.of("AGENTEXEC_CLUSTER_IMAGES", IMAGE, "AGENTEXEC_AUTH_MODE", "api-keys",
                "AGENTEXEC_KEYS_REFRESH", REFRESH.toSeconds() + "s"));
        LocalCluster.Result up = cluster.up(2);
        assertEquals(0, up.exitCode(), () -> "cluster-up.sh 2 failed:\n" + cluster.logTail());
        assertNotNull(up.json(), up::stdout);
        auth = bearer(createTenant("load", "--max-live-sandboxes", "40", "--requests-per-second", "500", "--burst", "500"));
    }

    @AfterAll
    void down() {
        if (cluster != null) {
            cluster.close();
        }
    }

    @Test
    @Order(1)
    void aKeyMadeWithTheCliWorksOnEveryNodeAndItsRevocationReachesEveryNode() throws Exception {
        Map<String, String> key = bearer(createTenant("keys"));
        List<Integer> nodes = cluster.nodeIndexes();
        assertEquals(3, nodes.size(), cluster.state()::toString);
        for (int node : nodes) {
            LocalCluster.Reply r = cluster.call(node, "POST", "/v1/executions", python("print(6*7)"), key);
            assertEquals(200, r.status(), () -> "node " + node + ": " + r.body());
            assertEquals("42", r.json().get("stdout").asText().strip(), r::body);
            LocalCluster.Reply none = cluster.call(node, "POST", "/v1/executions", python("print(1)"), Map.of());
            assertEquals(401, none.status(), () -> "node " + node + " without a key: " + none.body());
            assertEquals(200, cluster.call(node, "GET", "/v1/languages", null, key).status(), "node " + node);
        }

        LocalCluster.Result revoked = cluster.cli(List.of("tenant", "revoke", "keys"));
        assertEquals(0, revoked.exitCode(), cluster::logTail);
        long revokedAt = System.nanoTime();
        Duration bound = REFRESH.plus(REFRESH_SLACK);
        Set<Integer> refusing = new HashSet<>();
        Map<Integer, Long> seenAfterMs = new java.util.TreeMap<>();
        while (refusing.size() < nodes.size() && System.nanoTime() - revokedAt < bound.toNanos()) {
            for (int node : nodes) {
                if (!refusing.contains(node)) {
                    LocalCluster.Reply r = cluster.call(node, "GET", "/v1/languages", null, key);
                    if (r.status() == 401) {
                        refusing.add(node);
                        seenAfterMs.put(node, TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - revokedAt));
                    }
                }
            }
            Thread.sleep(100);
        }
        System.out.println("KEYS: revoked key refused by nodes " + seenAfterMs + " (ms after the CLI returned; refresh "
                + REFRESH + ")");
        assertEquals(new HashSet<>(nodes), refusing, () -> "nodes refusing the revoked key within " + bound + ": "
                + seenAfterMs);
        // Still refused afterwards (no node brings it back from a stale copy).
        for (int node : nodes) {
            assertEquals(401, cluster.call(node, "POST", "/v1/executions", python("print(1)"), key).status());
        }
    }

    @Test
    @Order(2)
    void rollingRestartUnderLoadLosesNothingAndRepeatsNothing() throws Exception {
        List<String> sandboxes = new ArrayList<>();
        for (int i = 0; i < SANDBOXES; i++) {
            sandboxes.add(ok(post("/v1/sandboxes", "{\"language\":\"python\"}")).get("id").asText());
        }
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger accepted = new AtomicInteger();
        AtomicInteger completed = new AtomicInteger();
        AtomicInteger refused = new AtomicInteger();
        AtomicInteger reRun = new AtomicInteger();
        ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
        AtomicInteger[] linesWritten = new AtomicInteger[SANDBOXES];
        ExecutorService load = Executors.newFixedThreadPool(SANDBOXES + ONE_OFF_CALLERS);
        List<Future<?>> loops = new ArrayList<>();
        try {
            for (int s = 0; s < SANDBOXES; s++) {
                String id = sandboxes.get(s);
                AtomicInteger written = linesWritten[s] = new AtomicInteger();
                loops.add(load.submit(() -> {
                    while (!stop.get()) {
                        int n = written.get();
                        LocalCluster.Reply r;
                        try {
                            r = post("/v1/sandboxes/" + id + "/executions", python(appendAndCheck(n)));
                        } catch (RuntimeException e) {
                            failures.add("sandbox " + id + " line " + n + ": " + e);
                            return null;
                        }
                        if (isRefusal(r)) {
                            refused.incrementAndGet();
                        } else {
                            accepted.incrementAndGet();
                            String out = r.json() == null ? "" : r.json().path("stdout").asText().strip();
                            if (r.status() == 200 && r.errorCode().isEmpty() && r.json().path("verdict").asText().equals("OK")
                                    && out.equals("OK " + n) && !r.json().has("note")) {
                                completed.incrementAndGet();
                                written.incrementAndGet();
                            } else {
                                if (out.startsWith("BAD")) {
                                    reRun.incrementAndGet();
                                }
                                failures.add("sandbox " + id + " line " + n + ": " + r.status() + " " + r.body());
                                return null; // its log is no longer known: this sandbox stops
                            }
                        }
                        pace(PACE_MS);
                    }
                    return null;
                }));
            }
            for (int c = 0; c < ONE_OFF_CALLERS; c++) {
                loops.add(load.submit(() -> {
                    for (int i = 0; !stop.get(); i++) {
                        String token = "t" + Thread.currentThread().getId() + "-" + i;
                        LocalCluster.Reply r;
                        try {
                            r = post("/v1/executions", python("print('" + token + "')"));
                        } catch (RuntimeException e) {
                            failures.add("one-off " + token + ": " + e);
                            return null;
                        }
                        if (isRefusal(r)) {
                            refused.incrementAndGet();
                        } else {
                            accepted.incrementAndGet();
                            if (r.status() == 200 && r.errorCode().isEmpty() && r.json().path("verdict").asText().equals("OK")
                                    && r.json().path("stdout").asText().strip().equals(token)) {
                                completed.incrementAndGet();
                            } else {
                                failures.add("one-off " + token + ": " + r.status() + " " + r.body());
                            }
                        }
                        pace(PACE_MS);
                    }
                    return null;
                }));
            }
            // Steady load before the first stop: every sandbox has run twice.
            awaitLines(linesWritten, 2, failures);
            long start = System.nanoTime();
            for (int k : List.copyOf(cluster.workerIndexes())) {
                int before = total(linesWritten);
                LocalCluster.Result stopped = cluster.stopWorker(k);
                assertEquals(0, stopped.exitCode(), () -> "cluster-down.sh --worker " + k + ":\n" + cluster.logTail());
                LocalCluster.Result started = cluster.startWorker(k);
                assertEquals(0, started.exitCode(), () -> "cluster-up.sh --worker " + k + ":\n" + cluster.logTail());
                System.out.println("ROLLING: worker " + k + " restarted; sandbox lines meanwhile "
                        + (total(linesWritten) - before));
            }
            System.out.println("ROLLING: both workers restarted in " + Duration.ofNanos(System.nanoTime() - start));
            // The load goes on over the replacements: every sandbox runs twice more.
            int[] after = new int[SANDBOXES];
            for (int s = 0; s < SANDBOXES; s++) {
                after[s] = linesWritten[s].get() + 2;
            }
            awaitLines(linesWritten, after, failures);
        } finally {
            stop.set(true);
            load.shutdown();
        }
        for (Future<?> f : loops) {
            f.get(5, TimeUnit.MINUTES);
        }
        load.shutdownNow();

        // Every sandbox's file holds every line it wrote, once, in order.
        int lost = 0;
        for (int s = 0; s < SANDBOXES; s++) {
            int n = linesWritten[s].get();
            LocalCluster.Reply r = post("/v1/sandboxes/" + sandboxes.get(s) + "/executions",
                    python("print(open('log.txt').read().split())"));
            String want = new ArrayList<>(java.util.stream.IntStream.range(0, n).mapToObj(i -> "'" + i + "'").toList()).toString();
            if (r.status() != 200 || r.json().has("note") || !r.json().path("stdout").asText().strip().equals(want)) {
                lost++;
                failures.add("sandbox " + sandboxes.get(s) + "'s log after the restarts, " + n + " lines expected: " + r.body());
            }
        }
        System.out.printf("ROLLING-COUNTS: accepted=%d completed=%d failed=%d re-run=%d refused=%d lost-workspaces=%d"
                        + " sandbox-lines=%d%n", accepted.get(), completed.get(), accepted.get() - completed.get(), reRun.get(),
                refused.get(), lost, total(linesWritten));
        for (String id : sandboxes) {
            cluster.call(0, "DELETE", "/v1/sandboxes/" + id, null, auth);
        }
        assertEquals(List.of(), List.copyOf(failures), "every accepted execution ends OK, no workspace lost, nothing re-run");
        assertEquals(accepted.get(), completed.get());
        assertEquals(0, lost);
    }

    // ---- helpers

    /** Creates a tenant with the CLI; its key (the one line the command prints). */
    private String createTenant(String id, String... options) {
        List<String> args = new ArrayList<>(List.of("tenant", "create", id));
        args.addAll(List.of(options));
        LocalCluster.Result r = cluster.cli(args);
        assertEquals(0, r.exitCode(), () -> "agentexec tenant create " + id + ":\n" + cluster.logTail());
        // The command's log lines (JSON, stdout not being a terminal) share stdout with the key: the key is the one
        // line that is not a log line.
        List<String> keys = r.stdout().lines().map(String::strip).filter(l -> !l.isEmpty() && !l.startsWith("{")).toList();
        assertEquals(1, keys.size(), () -> "one key printed: " + r.stdout());
        return keys.get(0);
    }

    private static Map<String, String> bearer(String key) {
        return Map.of("Authorization", "Bearer " + key);
    }

    private LocalCluster.Reply post(String path, String json) {
        return cluster.call(0, "POST", path, json, auth);
    }

    /** Refused before it was accepted: overloaded or over the tenant's rate (the caller may retry). */
    private static boolean isRefusal(LocalCluster.Reply r) {
        return (r.status() == 503 && r.errorCode().equals("overloaded")) || r.status() == 429;
    }

    /** Python that checks log.txt holds lines 0..n-1 exactly, then appends n: prints "OK n", or "BAD" and the lines. */
    private static String appendAndCheck(int n) {
        return "import os\n"
                + "lines = open('log.txt').read().split() if os.path.exists('log.txt') else []\n"
                + "good = lines == [str(i) for i in range(" + n + ")]\n"
                + "open('log.txt', 'a').write('" + n + "\\n')\n"
                + "print('OK " + n + "' if good else 'BAD ' + ' '.join(lines))\n";
    }

    private static String python(String code) {
        return JSON.createObjectNode().put("language", "python").put("code", code).toString();
    }

    private static JsonNode ok(LocalCluster.Reply r) {
        assertTrue((r.status() == 200 || r.status() == 201) && r.errorCode().isEmpty(), () -> r.status() + " " + r.body());
        return r.json();
    }

    private static int total(AtomicInteger[] counts) {
        int t = 0;
        for (AtomicInteger c : counts) {
            t += c.get();
        }
        return t;
    }

    private static void awaitLines(AtomicInteger[] counts, int atLeast, ConcurrentLinkedQueue<String> failures) throws Exception {
        int[] want = new int[counts.length];
        java.util.Arrays.fill(want, atLeast);
        awaitLines(counts, want, failures);
    }

    /** Waits (bounded) until every sandbox wrote its wanted lines; fails at once when a run failed. */
    private static void awaitLines(AtomicInteger[] counts, int[] want, ConcurrentLinkedQueue<String> failures) throws Exception {
        long deadline = System.nanoTime() + CHANGE_SEEN.toNanos();
        while (System.nanoTime() < deadline) {
            assertEquals(List.of(), List.copyOf(failures), "the load's failures");
            boolean all = true;
            for (int i = 0; i < counts.length; i++) {
                all &= counts[i].get() >= want[i];
            }
            if (all) {
                return;
            }
            Thread.sleep(200);
        }
        throw new AssertionError("the sandboxes did not reach their lines within " + CHANGE_SEEN + ": "
                + java.util.Arrays.toString(counts) + " of " + java.util.Arrays.toString(want));
    }

    private static void pace(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
