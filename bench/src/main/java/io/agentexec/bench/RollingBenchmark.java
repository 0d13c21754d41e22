package io.agentexec.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * What a rolling restart costs the callers: the same steady load run twice on a many-daemon cluster
 * ({@code scripts/cluster-up.sh 2}: a gateway node and two workers, each on a dockerd of its own, PostgreSQL journal,
 * mutual TLS), once without restarts and once while each worker in turn gets SIGTERM ({@code cluster-down.sh
 * --worker K}: it drains, its sandboxes move with their files) and a replacement starts on its daemon
 * ({@code cluster-up.sh --worker K}), as {@code ClusterOperationsTest}'s rolling restart does. The load is that test's:
 * sandboxes each appending a line to a file of their workspace and checking the lines before it (a lost or repeated
 * run shows), and one-off callers, each caller pacing its requests. Per run: accepted, completed, failed and refused
 * requests, and the latency percentiles of completed one-offs and of completed sandbox runs.
 *
 *   bench/run.sh rolling [SECONDS] [SANDBOXES] [ONE_OFF_CALLERS] [SETTLE_SECONDS]     (defaults 120, 6, 2, 20)
 *
 * The run without restarts lasts SECONDS; the rolling run starts its first restart after SETTLE_SECONDS of load and
 * goes on until SETTLE_SECONDS after the last replacement is ready, and at least SECONDS. Runs as root on a machine
 * prepared by scripts/setup.sh, like the scripts; its cluster has its own directory, name and ports
 * (AGENTEXEC_CLUSTER_DIR /tmp/aec-rolling, schema agentexec_cluster_rolling, ports 26620/26180/26564 and up) and is
 * removed at the end (and on the way out of this JVM).
 */
public final class RollingBenchmark {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** Between one caller's requests, as in ClusterOperationsTest: a steady load, not saturation. */
    private static final long PACE_MS = 300;
    /** A refused request (429, 503 overloaded) is tried again after this. */
    private static final long REFUSED_PAUSE_MS = 100;
    private static final int WORKERS = 2;
    /** Load before the measured runs: the nodes' JIT, the warm pools. */
    private static final int WARM_UP_SECONDS = 20;

    private enum Status { COMPLETED, FAILED, REFUSED }

    /** One request of the load: when it was sent, how long its answer took, how it ended. */
    private record Outcome(long sentNanos, double ms, Status status) {
    }

    /** The outcomes of one kind of request in one run, and what the failed ones answered. */
    private static final class Tally {
        final ConcurrentLinkedQueue<Outcome> outcomes = new ConcurrentLinkedQueue<>();
        final ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();

        void add(long sent, Status status) {
            outcomes.add(new Outcome(sent, (System.nanoTime() - sent) / 1e6, status));
        }

        void failed(long sent, String what) {
            add(sent, Status.FAILED);
            failures.add(what);
        }

        /** The requests sent within one of the windows ({start, end} in nanoTime). */
        Tally sentWithin(List<long[]> windows) {
            Tally t = new Tally();
            outcomes.stream().filter(o -> windows.stream().anyMatch(w -> o.sentNanos() >= w[0] && o.sentNanos() <= w[1]))
                    .forEach(t.outcomes::add);
            return t;
        }

        long count(Status s) {
            return outcomes.stream().filter(o -> o.status() == s).count();
        }

        long accepted() {
            return count(Status.COMPLETED) + count(Status.FAILED);
        }

        /** Latency percentile of the completed requests. */
        double pct(double q) {
            double[] all = completedMs();
            return all.length == 0 ? Double.NaN : BenchmarkReport.percentile(all, q);
        }

        double max() {
            return Arrays.stream(completedMs()).max().orElse(Double.NaN);
        }

        private double[] completedMs() {
            return outcomes.stream().filter(o -> o.status() == Status.COMPLETED).mapToDouble(Outcome::ms).toArray();
        }
    }

    private record Run(String name, double seconds, Tally oneOffs, Tally sandboxRuns, int lostWorkspaces,
                       List<String> steps, String loadBefore, String loadAfter) {
    }

    public static void main(String[] args) throws Exception {
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 120;
        int sandboxes = args.length > 1 ? Integer.parseInt(args[1]) : 6;
        int oneOffCallers = args.length > 2 ? Integer.parseInt(args[2]) : 2;
        int settle = args.length > 3 ? Integer.parseInt(args[3]) : 20;
        ClusterScripts cluster = new ClusterScripts("rolling", 26620, 26180, 26564);
        JsonNode state = cluster.up(Integer.toString(WORKERS));
        String url = state.get("gateway").get("url").asText();
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10)).build();

        log("warm-up: " + WARM_UP_SECONDS + " s");
        run(http, url, "warm-up", sandboxes, oneOffCallers, () -> sleep(WARM_UP_SECONDS), List.of());
        log("run 1: steady load, no restarts, " + seconds + " s");
        Run steady = run(http, url, "no restarts", sandboxes, oneOffCallers, () -> sleep(seconds), List.of());
        log("run 2: steady load, SIGTERM and replacement of each worker in turn");
        List<String> steps = new ArrayList<>();
        List<long[]> restarting = new ArrayList<>();
        Run rolling = run(http, url, "rolling restart", sandboxes, oneOffCallers, () -> {
            long start = System.nanoTime();
            sleep(settle);
            for (int k = 1; k <= WORKERS; k++) {
                long t0 = System.nanoTime();
                JsonNode stopped = cluster.run("scripts/cluster-down.sh", "--worker", Integer.toString(k));
                long t1 = System.nanoTime();
                cluster.run("scripts/cluster-up.sh", "--worker", Integer.toString(k));
                long t2 = System.nanoTime();
                restarting.add(new long[] {t0, t2});
                steps.add(String.format(Locale.ROOT, "worker %d: SIGTERM to exit %.0f s (node %s), replacement ready %.0f s",
                        k, (t1 - t0) / 1e9, stopped.path("node").asText(), (t2 - t1) / 1e9));
                log(steps.get(steps.size() - 1));
            }
            sleep(settle);
            long left = TimeUnit.SECONDS.toNanos(seconds) - (System.nanoTime() - start);
            if (left > 0) {
                sleep((int) Math.ceil(left / 1e9));
            }
        }, steps);
        cluster.down();

        int slots = Integer.parseInt(System.getenv().getOrDefault("AGENTEXEC_WORKER_SLOTS", "4"));
        List<String> lines = new ArrayList<>();
        lines.add("## Rolling restart: latency with and without restarts");
        lines.add("");
        lines.add(BenchmarkReport.machineLine());
        lines.add(String.format(Locale.ROOT, "`scripts/cluster-up.sh %d`: one gateway node and %d worker nodes on "
                + "loopback, each worker on a dockerd of its own, PostgreSQL journal, mutual TLS; %d slots a worker. The "
                + "same load twice, through the gateway's HTTP API (JDK HttpClient): %d sandboxes each appending a line to "
                + "a file of its workspace and checking the lines before it, and %d one-off callers (`print(token)`, a "
                + "fresh container each); every caller waits %d ms between its requests. First without restarts for %d "
                + "s; then with each worker in turn stopped with SIGTERM (`cluster-down.sh --worker K`: it drains, its "
                + "sandboxes move with their files) and replaced on its daemon (`cluster-up.sh --worker K`, which "
                + "returns once every node counts %d workers reachable), from %d s into the run until %d s after the "
                + "last replacement; its requests sent while a stop or a start ran are shown again on their own (their "
                + "duration: those steps' sum). After a %d s warm-up. `bench/run.sh rolling %d %d %d %d`.", WORKERS, WORKERS,
                slots, sandboxes, oneOffCallers, PACE_MS, seconds, WORKERS, settle, settle, WARM_UP_SECONDS, seconds,
                sandboxes, oneOffCallers, settle));
        lines.add("");
        lines.add("| run | requests | duration s | accepted | completed | failed | refused | p50 ms | p95 ms | p99 ms | max ms |");
        lines.add("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (Run r : List.of(steady, rolling)) {
            lines.add(row(r.name(), r.seconds(), "one-off executions", r.oneOffs()));
            lines.add(row(r.name(), r.seconds(), "sandbox executions", r.sandboxRuns()));
        }
        double restartSeconds = restarting.stream().mapToLong(w -> w[1] - w[0]).sum() / 1e9;
        String during = "rolling restart, sent while a worker stopped or started";
        lines.add(row(during, restartSeconds, "one-off executions", rolling.oneOffs().sentWithin(restarting)));
        lines.add(row(during, restartSeconds, "sandbox executions", rolling.sandboxRuns().sentWithin(restarting)));
        lines.add("");
        Tally oneOffsDuring = rolling.oneOffs().sentWithin(restarting);
        Tally sandboxRunsDuring = rolling.sandboxRuns().sentWithin(restarting);
        lines.add(String.format(Locale.ROOT, "p99 with the rolling restart against without: one-offs %.0f ms vs %.0f "
                        + "ms (%.2f ×; %.0f ms, %.2f ×, for those sent while a worker stopped or started), sandbox "
                        + "executions %.0f ms vs %.0f ms (%.2f ×; %.0f ms, %.2f ×). Lost workspaces (a sandbox's file "
                        + "not holding exactly its lines at the end): %d without restarts, %d with.",
                rolling.oneOffs().pct(99), steady.oneOffs().pct(99), rolling.oneOffs().pct(99) / steady.oneOffs().pct(99),
                oneOffsDuring.pct(99), oneOffsDuring.pct(99) / steady.oneOffs().pct(99),
                rolling.sandboxRuns().pct(99), steady.sandboxRuns().pct(99),
                rolling.sandboxRuns().pct(99) / steady.sandboxRuns().pct(99), sandboxRunsDuring.pct(99),
                sandboxRunsDuring.pct(99) / steady.sandboxRuns().pct(99), steady.lostWorkspaces(),
                rolling.lostWorkspaces()));
        lines.add("Restarts: " + String.join("; ", rolling.steps()) + ". Load average (1, 5, 15 min) at the start and "
                + "end of each run: without restarts " + steady.loadBefore() + " → " + steady.loadAfter()
                + "; rolling " + rolling.loadBefore() + " → " + rolling.loadAfter() + ". Latencies are of completed "
                + "requests, from the caller; all nodes, dockerds and containers share this machine's cores with "
                + "whatever else runs on it, so compare the two runs with each other, not with other tables.");
        for (Run r : List.of(steady, rolling)) {
            List<String> failures = new ArrayList<>(r.oneOffs().failures);
            failures.addAll(r.sandboxRuns().failures);
            if (!failures.isEmpty()) {
                lines.add("");
                lines.add("Failed requests (" + r.name() + "), first " + Math.min(5, failures.size()) + " of "
                        + failures.size() + ":");
                for (String f : failures.subList(0, Math.min(5, failures.size()))) {
                    lines.add("- " + (f.length() > 300 ? f.substring(0, 300) + "…" : f).replace("|", "\\|"));
                }
            }
        }
        BenchmarkReport.writeSection(Path.of("docs/benchmarks.md"), "rolling", lines);
        System.out.println(String.join("\n", lines));
    }

    private static String row(String run, double seconds, String kind, Tally t) {
        return String.format(Locale.ROOT, "| %s | %s | %.0f | %d | %d | %d | %d | %.0f | %.0f | %.0f | %.0f |", run, kind,
                seconds, t.accepted(), t.count(Status.COMPLETED), t.count(Status.FAILED), t.count(Status.REFUSED),
                t.pct(50), t.pct(95), t.pct(99), t.max());
    }

    @FunctionalInterface
    private interface During {
        void run() throws Exception;
    }

    /** Starts the load on fresh sandboxes, runs {@code during}, stops the load and checks every sandbox's file. */
    private static Run run(HttpClient http, String url, String name, int sandboxes, int oneOffCallers, During during,
                           List<String> steps) throws Exception {
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < sandboxes; i++) {
            ids.add(json(send(http, url, "POST", "/v1/sandboxes", "{\"language\":\"python\"}")).path("id").asText());
        }
        Tally oneOffs = new Tally();
        Tally sandboxRuns = new Tally();
        AtomicBoolean stop = new AtomicBoolean();
        int[] lines = new int[sandboxes];
        List<Thread> callers = new ArrayList<>();
        for (int s = 0; s < sandboxes; s++) {
            int index = s;
            String id = ids.get(s);
            callers.add(caller("sandbox-" + s, () -> {
                while (!stop.get()) {
                    int n = lines[index];
                    long t0 = System.nanoTime();
                    HttpResponse<String> r = sendOrNull(http, url, "POST", "/v1/sandboxes/" + id + "/executions",
                            python(appendAndCheck(n)), sandboxRuns, t0);
                    if (r == null) {
                        continue;
                    }
                    if (refused(r)) {
                        sandboxRuns.add(t0, Status.REFUSED);
                        sleepMs(REFUSED_PAUSE_MS);
                        continue;
                    }
                    JsonNode doc = json(r);
                    String out = doc.path("stdout").asText().strip();
                    if (ok(r, doc) && out.equals("OK " + n) && !doc.has("note")) {
                        sandboxRuns.add(t0, Status.COMPLETED);
                        lines[index] = n + 1;
                    } else {
                        sandboxRuns.failed(t0, "sandbox " + id + " line " + n + ": " + r.statusCode() + " " + r.body());
                        // A run that happened left lines 0..n (it repairs a file it finds wrong); one that did not
                        // (or whose answer was lost) is tried again, and the next run repairs what it finds.
                        lines[index] = out.startsWith("OK") || out.startsWith("BAD") ? n + 1 : n;
                    }
                    sleepMs(PACE_MS);
                }
            }));
        }
        for (int c = 0; c < oneOffCallers; c++) {
            int caller = c;
            callers.add(caller("one-off-" + c, () -> {
                for (int i = 0; !stop.get(); i++) {
                    String token = "t" + caller + "-" + i;
                    long t0 = System.nanoTime();
                    HttpResponse<String> r = sendOrNull(http, url, "POST", "/v1/executions",
                            python("print('" + token + "')"), oneOffs, t0);
                    if (r == null) {
                        continue;
                    }
                    if (refused(r)) {
                        oneOffs.add(t0, Status.REFUSED);
                        sleepMs(REFUSED_PAUSE_MS);
                        continue;
                    }
                    JsonNode doc = json(r);
                    if (ok(r, doc) && doc.path("stdout").asText().strip().equals(token)) {
                        oneOffs.add(t0, Status.COMPLETED);
                    } else {
                        oneOffs.failed(t0, "one-off " + token + ": " + r.statusCode() + " " + r.body());
                    }
                    sleepMs(PACE_MS);
                }
            }));
        }
        String loadBefore = BenchmarkReport.loadAverage();
        long start = System.nanoTime();
        callers.forEach(Thread::start);
        during.run();
        stop.set(true);
        for (Thread t : callers) {
            t.join(TimeUnit.MINUTES.toMillis(5));
        }
        double took = (System.nanoTime() - start) / 1e9;
        String loadAfter = BenchmarkReport.loadAverage();

        int lost = 0;
        for (int s = 0; s < sandboxes; s++) {
            String want = Arrays.toString(java.util.stream.IntStream.range(0, lines[s]).mapToObj(i -> "'" + i + "'").toArray());
            HttpResponse<String> r = send(http, url, "POST", "/v1/sandboxes/" + ids.get(s) + "/executions",
                    python("print(open('log.txt').read().split() if __import__('os').path.exists('log.txt') else [])"));
            JsonNode doc = json(r);
            if (!ok(r, doc) || doc.has("note") || !doc.path("stdout").asText().strip().equals(want)) {
                lost++;
                sandboxRuns.failures.add("sandbox " + ids.get(s) + "'s file at the end, " + lines[s] + " lines expected: "
                        + r.body());
            }
            send(http, url, "DELETE", "/v1/sandboxes/" + ids.get(s), null);
        }
        log(String.format(Locale.ROOT, "%s: %.0f s; one-offs %d accepted, %d completed; sandbox runs %d accepted, %d "
                        + "completed; %d lost workspaces", name, took, oneOffs.accepted(), oneOffs.count(Status.COMPLETED),
                sandboxRuns.accepted(), sandboxRuns.count(Status.COMPLETED), lost));
        return new Run(name, took, oneOffs, sandboxRuns, lost, List.copyOf(steps), loadBefore, loadAfter);
    }

    /**
     * Python that checks log.txt holds lines 0..n-1 exactly, then appends n: prints "OK n"; else (a lost workspace, a
     * run repeated or missing) prints "BAD" and the lines it found, and rewrites the file as lines 0..n so that one
     * fault counts once.
     */
    private static String appendAndCheck(int n) {
        return "import os\n"
                + "lines = open('log.txt').read().split() if os.path.exists('log.txt') else []\n"
                + "good = lines == [str(i) for i in range(" + n + ")]\n"
                + "if good:\n"
                + "    open('log.txt', 'a').write('" + n + "\\n')\n"
                + "else:\n"
                + "    open('log.txt', 'w').write(''.join('%d\\n' % i for i in range(" + (n + 1) + ")))\n"
                + "print('OK " + n + "' if good else 'BAD ' + ' '.join(lines[-20:]))\n";
    }

    private static String python(String code) {
        return JSON.createObjectNode().put("language", "python").put("code", code).toString();
    }

    /** Refused before it was accepted: over the tenant's rate, or overloaded (the caller may try again). */
    private static boolean refused(HttpResponse<String> r) {
        return r.statusCode() == 429 || (r.statusCode() == 503 && r.body().contains("\"overloaded\""));
    }

    /** A 200 whose body is the result (not an error document after a committed 200) with verdict OK. */
    private static boolean ok(HttpResponse<String> r, JsonNode doc) {
        return r.statusCode() == 200 && !doc.has("error") && doc.path("verdict").asText().equals("OK");
    }

    private static JsonNode json(HttpResponse<String> r) {
        try {
            return r.body().isBlank() ? JSON.createObjectNode() : JSON.readTree(r.body());
        } catch (IOException e) {
            return JSON.createObjectNode();
        }
    }

    private static HttpResponse<String> send(HttpClient http, String url, String method, String path, String body)
            throws IOException, InterruptedException {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url + path)).timeout(Duration.ofMinutes(4))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(body));
        if (body != null) {
            b.header("Content-Type", "application/json");
        }
        return http.send(b.build(), HttpResponse.BodyHandlers.ofString());
    }

    /** A request of the load: null when it got no answer (counted as accepted and failed; the caller paces on). */
    private static HttpResponse<String> sendOrNull(HttpClient http, String url, String method, String path, String body,
                                                   Tally tally, long sent) throws InterruptedException {
        try {
            return send(http, url, method, path, body);
        } catch (IOException e) {
            tally.failed(sent, method + " " + path + ": no answer: " + e);
            sleepMs(PACE_MS);
            return null;
        }
    }

    @FunctionalInterface
    private interface Loop {
        void run() throws Exception;
    }

    private static Thread caller(String name, Loop loop) {
        Thread t = new Thread(() -> {
            try {
                loop.run();
            } catch (Exception e) {
                log(name + " stopped: " + e);
            }
        }, name);
        t.setDaemon(true);
        return t;
    }

    private static void sleep(int seconds) throws InterruptedException {
        Thread.sleep(TimeUnit.SECONDS.toMillis(seconds));
    }

    private static void sleepMs(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private static void log(String line) {
        System.err.println("[rolling " + java.time.LocalTime.now().withNano(0) + "] " + line);
    }


}
