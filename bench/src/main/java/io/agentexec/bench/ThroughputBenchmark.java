package io.agentexec.bench;

import com.github.dockerjava.api.DockerClient;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.agentexec.gateway.tenant.TenantRegistry;
import io.agentexec.node.Guardian;
import io.agentexec.sandbox.docker.DockerBackend;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Throughput of {@code print(1)} at concurrency 1, 2, 8 and 16, in one run, interleaved: bare
 * {@code /usr/bin/python3 -c 'print(1)'} spawned on the host (the machine's own limit for starting a Python) against,
 * through the gateway over the cluster (HTTP, a minimal keep-alive client per caller; a single node as
 * {@code bin/agentexec serve} runs it by default: H2 file journal, default worker slots), warm sandboxes with
 * pre-initialised interpreters (each caller owns one, zygotes on), warm sandboxes with plain starts (a second node,
 * zygotes off), and one-off executions ({@code POST /v1/executions}, no sandbox) on a third node with the shipped
 * {@code zygote.enabled = auto} (the table says what its probe chose) and, for the before/after, on the first node
 * (zygotes on, as every one-off ran before {@code auto}). Per concurrency, phases of each path take turns,
 * {@code ROUNDS} times, so that load from elsewhere falls on all of them alike.
 *
 * <p>A one-off phase's time includes waiting, after it, for the daemon to finish with the containers it left
 * (stopped ones being removed): that work would otherwise fall on whatever runs next.
 *
 * <p>The nodes run in this JVM and start fresh: every path first runs unmeasured at concurrency 2 for
 * {@code WARM_UP_SECONDS} (default 20) each, so that the figures are a running node's, not the JIT's.
 *
 *   bench/run.sh throughput [SECONDS_PER_PHASE] [ROUNDS] [WARM_UP_SECONDS] [N,N,...]
 *
 * <p>Given concurrency levels other than the full set (e.g. {@code 8}) it runs only those and prints their table
 * without writing docs/benchmarks.md: an A/B of one level, not the published table. Given all of them ({@code
 * 1,2,8,16}), it is the full run, and writes it.
 */
public final class ThroughputBenchmark {
    private static final String HOST_PYTHON = "/usr/bin/python3";
    private static final String KEY = "bench-key-0123456789";
    private static final String CODE = "{\"language\":\"python\",\"code\":\"print(1)\"}";
    private static final int[] ALL_CONCURRENCY = {1, 2, 8, 16};
    private static final int WARM_UP_CALLS = 3;
    /** Rounds of the one-call-at-a-time latency table: each path called once per round, in turn. */
    private static final int TURN_ROUNDS = 150;
    /**
     * Pause after each call of the one-call-at-a-time table. Without it a call ran while the previous path's node was
     * still busy after its answer (a zygote forking and copying the next block's process, a one-off's container being
     * scrubbed), and on this machine that work slows whatever runs beside it: the plain start measured right after
     * the zygote's call took 49-55 ms against 38 with the pause, and bare spawns after a one-off 37 ms against 32.
     * An agent's blocks are apart by its model's turns, seconds, so each call here starts on a quiet machine.
     */
    private static final Duration TURN_PAUSE = Duration.ofMillis(250);
    /** Concurrency of the unmeasured warm-up of every path. */
    private static final int WARM_UP_CALLERS = 2;
    /**
     * Seconds of each path at concurrency 2 before anything is measured: the nodes run in this JVM, fresh, and a node's
     * CPU per execution at concurrency 2 kept falling for minutes as the JIT compiled it (warm sandbox runs measured
     * with a Python client: 9.0, 5.7, 4.7 ms in the first three 10-second phases; 3.4 ms some minutes later).
     */
    private static final int DEFAULT_WARM_UP_SECONDS = 20;
    private static final long SETTLE_LIMIT_MS = 120_000;
    private static final String BARE = "bare python3 spawns";
    private static final String ZYGOTE = "warm sandbox, pre-initialised interpreter";
    private static final String PLAIN = "warm sandbox, plain start";
    private static final String ONE_OFF = "one-off (`POST /v1/executions`)";
    /** One-offs on the node with zygotes on: what every one-off did before `auto`, for the before/after. */
    private static final String ONE_OFF_FORKED = "one-off, zygotes on";

    private static final class Series {
        final List<Double> ms = new ArrayList<>();
        double seconds;
        double settleSeconds;
        int errors;
    }

    public static void main(String[] args) throws Exception {
        io.agentexec.node.AsyncStages.onTheCommonPool(); // the nodes here run as bin/agentexec serve's do
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 3;
        int warmUpSeconds = args.length > 2 ? Integer.parseInt(args[2]) : DEFAULT_WARM_UP_SECONDS;
        int[] concurrency = args.length > 3
                ? Arrays.stream(args[3].split(",")).mapToInt(Integer::parseInt).sorted().toArray() : ALL_CONCURRENCY;
        if (concurrency[0] < 1) {
            throw new IllegalArgumentException("concurrency levels must be positive, got " + args[3]);
        }
        int maxCallers = Math.max(concurrency[concurrency.length - 1], WARM_UP_CALLERS);
        Path dir = Files.createTempDirectory("agentexec-bench-throughput");
        Path keys = dir.resolve("keys.json");
        Files.writeString(keys, "{\"tenants\":[{\"id\":\"bench\",\"keySha256\":[\"" + TenantRegistry.sha256(KEY)
                + "\"],\"requestsPerSecond\":100000,\"burst\":100000,\"maxLiveSandboxes\":64}]}");
        String loadBefore = BenchmarkReport.loadAverage();
        Map<Integer, Map<String, Series>> results = new LinkedHashMap<>();
        List<HttpLite> connections = new ArrayList<>();
        DockerClient docker = DockerBackend.client();
        String owner = "/" + ProcessHandle.current().pid() + "/";
        String autoChoice;
        Map<String, double[]> turns = new LinkedHashMap<>();
        try (Guardian.Node zygotes = Guardian.start(config(keys, dir.resolve("journal-zygote"), "true"), silent());
             Guardian.Node plain = Guardian.start(config(keys, dir.resolve("journal-plain"), "false"), silent());
             Guardian.Node shipped = Guardian.start(config(keys, dir.resolve("journal-auto"), "auto"), silent())) {
            List<String> zygoteSandboxes = sandboxes(zygotes, maxCallers);
            List<String> plainSandboxes = sandboxes(plain, maxCallers);
            autoChoice = startPath(shipped);
            System.err.println("the one-offs' node (zygote.enabled = auto): " + autoChoice);
            warmUp(zygotes, plain, shipped, zygoteSandboxes, plainSandboxes, connections, warmUpSeconds);
            DaemonSettle.settle(docker, owner, SETTLE_LIMIT_MS);
            for (int c : concurrency) {
                Map<String, CallerFactory> factories = new LinkedHashMap<>();
                factories.put(BARE, i -> ThroughputBenchmark::bare);
                factories.put(ZYGOTE, i -> sandboxCall(zygotes, zygoteSandboxes.get(i), connections));
                factories.put(PLAIN, i -> sandboxCall(plain, plainSandboxes.get(i), connections));
                factories.put(ONE_OFF, i -> oneOffCall(shipped, connections));
                factories.put(ONE_OFF_FORKED, i -> oneOffCall(zygotes, connections));
                Map<String, List<Call>> paths = new LinkedHashMap<>();
                Map<String, Series> series = new LinkedHashMap<>();
                for (var e : factories.entrySet()) {
                    // Each path's connections make their first request as soon as they are open: the gateway closes
                    // a connection whose first request does not come within its header timeout (10 s).
                    paths.put(e.getKey(), callers(c, e.getValue()));
                    series.put(e.getKey(), new Series());
                    phase(paths.get(e.getKey()), WARM_UP_CALLS, 0, new Series());
                }
                DaemonSettle.settle(docker, owner, SETTLE_LIMIT_MS);
                for (int round = 0; round < rounds; round++) {
                    for (var e : paths.entrySet()) {
                        Series s = series.get(e.getKey());
                        phase(e.getValue(), 0, seconds, s);
                        if (isOneOff(e.getKey())) {
                            s.settleSeconds += DaemonSettle.settle(docker, owner, SETTLE_LIMIT_MS);
                        }
                        System.err.printf(Locale.ROOT, "c=%-2d %-45s n=%-5d p50 %.1f%n", c, e.getKey(), s.ms.size(),
                                s.ms.isEmpty() ? Double.NaN : BenchmarkReport.percentile(array(s), 50));
                    }
                }
                results.put(c, series);
            }
            if (concurrency[0] == 1) {
                // a path's calls apart as an agent's blocks are apart by its model's turns: what one block costs when
                // it does not queue behind the last, nor beside the work another path's last call left
                Map<String, InTurn.Opener> one = new LinkedHashMap<>();
                one.put(BARE, () -> ThroughputBenchmark::bare);
                one.put(ZYGOTE, () -> sandboxCall(zygotes, zygoteSandboxes.get(0), connections));
                one.put(PLAIN, () -> sandboxCall(plain, plainSandboxes.get(0), connections));
                one.put(ONE_OFF, () -> oneOffCall(shipped, connections));
                turns = InTurn.measure(one, WARM_UP_CALLS, TURN_ROUNDS, TURN_PAUSE);
            }
        } finally {
            for (HttpLite c : connections) {
                c.close();
            }
            docker.close();
        }
        report(results, turns, seconds, rounds, warmUpSeconds, loadBefore, autoChoice,
                Arrays.equals(concurrency, ALL_CONCURRENCY));
    }

    /** Every path through the nodes at concurrency 2 for {@code seconds}, unmeasured: the JIT's turn. */
    private static void warmUp(Guardian.Node zygotes, Guardian.Node plain, Guardian.Node shipped, List<String> zygoteSandboxes,
                               List<String> plainSandboxes, List<HttpLite> connections, int seconds) throws Exception {
        // Each path's connections are opened just before its phase: the gateway closes one that sends no request
        // within its header timeout (10 s).
        List<CallerFactory> paths = List.of(i -> sandboxCall(zygotes, zygoteSandboxes.get(i), connections),
                i -> sandboxCall(plain, plainSandboxes.get(i), connections), i -> oneOffCall(shipped, connections),
                i -> oneOffCall(zygotes, connections));
        for (CallerFactory path : paths) {
            phase(callers(WARM_UP_CALLERS, path), 0, seconds, new Series());
        }
    }

    /** Same-shaped callers for one path. */
    private static List<Call> callers(int n, CallerFactory factory) throws Exception {
        List<Call> calls = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            calls.add(factory.forCaller(i));
        }
        return calls;
    }

    @FunctionalInterface
    interface CallerFactory {
        Call forCaller(int index) throws Exception;
    }

    /** Every caller busy at once: {@code calls} each, or until {@code seconds} are over. */
    private static void phase(List<Call> callers, int calls, int seconds, Series into) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(callers.size());
        long start = System.nanoTime();
        long deadline = seconds > 0 ? start + TimeUnit.SECONDS.toNanos(seconds) : Long.MAX_VALUE;
        try {
            List<Future<List<Double>>> futures = new ArrayList<>();
            for (Call call : callers) {
                futures.add(pool.submit(() -> {
                    List<Double> mine = new ArrayList<>();
                    for (int n = 0; (calls == 0 || n < calls) && System.nanoTime() < deadline; n++) {
                        long t = System.nanoTime();
                        call.run();
                        mine.add((System.nanoTime() - t) / 1e6);
                    }
                    return mine;
                }));
            }
            for (Future<List<Double>> f : futures) {
                into.ms.addAll(f.get());
            }
        } finally {
            pool.shutdownNow();
        }
        into.seconds += (System.nanoTime() - start) / 1e9;
    }

    private static void bare() throws IOException, InterruptedException {
        Process p = new ProcessBuilder(HOST_PYTHON, "-c", "print(1)").redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (p.waitFor() != 0 || !new String(out).equals("1\n")) {
            throw new IllegalStateException("python3 printed " + new String(out));
        }
    }

    private static Call sandboxCall(Guardian.Node node, String sandbox, List<HttpLite> connections) throws IOException {
        HttpLite http = new HttpLite(node.httpPort(), KEY);
        synchronized (connections) {
            connections.add(http);
        }
        String path = "/v1/sandboxes/" + sandbox + "/executions";
        return () -> checkOk(http.post(path, CODE));
    }

    private static Call oneOffCall(Guardian.Node node, List<HttpLite> connections) throws IOException {
        HttpLite http = new HttpLite(node.httpPort(), KEY);
        synchronized (connections) {
            connections.add(http);
        }
        return () -> checkOk(http.post("/v1/executions", CODE));
    }

    private static void checkOk(HttpLite.Response r) {
        if (r.status() != 200 || !r.body().contains("\"verdict\":\"OK\"") || !r.body().contains("\"stdout\":\"1\\n\"")) {
            throw new IllegalStateException(r.status() + " " + r.body());
        }
    }

    private static List<String> sandboxes(Guardian.Node node, int n) throws Exception {
        waitReady(node);
        List<String> ids = new ArrayList<>();
        try (HttpLite http = new HttpLite(node.httpPort(), KEY)) {
            for (int i = 0; i < n; i++) {
                HttpLite.Response r = http.post("/v1/sandboxes", "{\"language\":\"python\"}");
                if (r.status() != 201) {
                    throw new IllegalStateException("creating a sandbox: " + r.status() + " " + r.body());
                }
                ids.add(r.body().replaceAll("(?s).*\"id\"\\s*:\\s*\"([^\"]+)\".*", "$1"));
                // its first run: the container exists and (where zygotes are on) its interpreter is started
                checkOk(http.post("/v1/sandboxes/" + ids.get(i) + "/executions", CODE));
            }
        }
        return ids;
    }

    private static boolean isOneOff(String path) {
        return path.equals(ONE_OFF) || path.equals(ONE_OFF_FORKED);
    }

    /** What the node's /readyz says about how its blocks start, once its zygote probe has measured. */
    private static String startPath(Guardian.Node node) throws Exception {
        waitReady(node);
        for (int i = 0; i < 1200; i++) {
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", node.httpPort())) {
                s.getOutputStream().write("GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".getBytes());
                String reply = new String(s.getInputStream().readAllBytes(), java.nio.charset.StandardCharsets.UTF_8);
                String detail = reply.replaceAll("(?s).*\"detail\"\\s*:\\s*\"((?:[^\"\\\\]|\\\\.)*)\".*", "$1");
                if (!detail.contains("until the probe has measured")) {
                    return detail.replaceAll(".*blocks start as ", "");
                }
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("the node's zygote probe never decided");
    }

    private static void waitReady(Guardian.Node node) throws Exception {
        for (int i = 0; i < 600; i++) {
            try (java.net.Socket s = new java.net.Socket("127.0.0.1", node.httpPort())) {
                s.getOutputStream().write("GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".getBytes());
                String status = new String(s.getInputStream().readNBytes(12));
                if (status.endsWith("200")) {
                    return;
                }
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("the node never became ready");
    }

    /** The node {@code bin/agentexec serve} runs by default, on free ports, its journal an H2 file of its own. */
    private static Config config(Path keys, Path journal, String zygotes) {
        Map<String, Object> o = new HashMap<>();
        o.put("agentexec.gateway.port", 0);
        o.put("agentexec.gateway.metrics.port", 0);
        o.put("agentexec.gateway.auth.keys-file", keys.toString());
        o.put("agentexec.cluster.persistence.url", Journals.localH2Url(journal));
        o.put("agentexec.sandbox.zygote.enabled", zygotes);
        o.put("pekko.remote.artery.canonical.port", 0);
        o.put("pekko.loglevel", "WARNING");
        return ConfigFactory.parseMap(o).withFallback(ConfigFactory.load()).resolve();
    }

    private static PrintStream silent() {
        return new PrintStream(new ByteArrayOutputStream());
    }

    private static double[] array(Series s) {
        return s.ms.stream().mapToDouble(Double::doubleValue).toArray();
    }

    private static void report(Map<Integer, Map<String, Series>> results, Map<String, double[]> turns, int seconds,
                               int rounds, int warmUpSeconds, String loadBefore, String autoChoice, boolean publish)
            throws IOException {
        List<String> lines = new ArrayList<>();
        lines.add("## Throughput: bare python3 spawns, warm sandboxes and one-offs, interleaved");
        lines.add("");
        lines.add(BenchmarkReport.machineLine() + " `bench/run.sh throughput " + seconds + " " + rounds + " "
                + warmUpSeconds + "`: `print(1)` with N callers busy at once; for each N, phases of " + seconds
                + " s of each path taking turns, " + rounds + " of each, after " + warmUpSeconds + " s of each path "
                + "unmeasured (the JIT's warm-up). Bare: `/usr/bin/python3 -c 'print(1)'` spawned on the host. The rest through the "
                + "gateway over the cluster (HTTP, a keep-alive connection per caller; one node as `bin/agentexec serve` "
                + "runs by default: H2 file journal, default worker slots and warm pool): warm sandboxes, one per caller, "
                + "with the pre-initialised interpreter (zygote) or, on a second node with zygotes off, plain starts; "
                + "one-offs (`POST /v1/executions`, no sandbox) of one tenant, on a third node with the shipped default "
                + "`zygote.enabled = auto`, which chose: " + autoChoice + "; and, as every one-off ran before `auto`, "
                + "one-offs on the node with zygotes on. A one-off phase's time includes waiting "
                + "after it for the daemon to finish with the containers it left (the settle column). Ratios are to "
                + "bare spawns at the same N (throughput: higher is better; p50 and p99: lower is better).");
        lines.add("");
        lines.add("| N | path | calls | calls/s | p50 ms | p99 ms | settle s | calls/s ÷ bare | p50 ÷ bare | p99 ÷ bare |");
        lines.add("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (var byN : results.entrySet()) {
            Series bare = byN.getValue().get(BARE);
            double bareRate = bare.ms.size() / bare.seconds;
            double bareP50 = BenchmarkReport.percentile(array(bare), 50);
            double bareP99 = BenchmarkReport.percentile(array(bare), 99);
            for (var e : byN.getValue().entrySet()) {
                Series s = e.getValue();
                double[] ms = array(s);
                double rate = ms.length / (s.seconds + s.settleSeconds);
                double p50 = BenchmarkReport.percentile(ms, 50);
                double p99 = BenchmarkReport.percentile(ms, 99);
                lines.add(String.format(Locale.ROOT, "| %d | %s | %d | %.1f | %.1f | %.1f | %s | %.2f× | %.2f× | %.2f× |",
                        byN.getKey(), e.getKey(), ms.length, rate, p50, p99,
                        isOneOff(e.getKey()) ? String.format(Locale.ROOT, "%.1f", s.settleSeconds) : "",
                        rate / bareRate, p50 / bareP50, p99 / bareP99));
            }
        }
        if (!turns.isEmpty()) {
            lines.add("");
            lines.add("One call at a time, each path in turn (" + TURN_ROUNDS + " rounds of one call of each path, after "
                    + "the table above; one caller, a pause of " + TURN_PAUSE.toMillis() + " ms after each answer): every "
                    + "call above at N = 1 follows the last one the moment its answer is in, so a warm sandbox's block "
                    + "waits for the interpreter forked after the last one to be ready; here a path's calls are apart "
                    + "as an agent's blocks are apart by its model's turns, and each starts once the work the last "
                    + "call left (a fork made ready, a container scrubbed) is done.");
            lines.add("");
            lines.add("| path | calls | p50 ms | p95 ms | p50 ÷ bare |");
            lines.add("|---|---:|---:|---:|---:|");
            double bareP50 = BenchmarkReport.percentile(turns.get(BARE), 50);
            turns.forEach((path, ms) -> {
                double p50 = BenchmarkReport.percentile(ms, 50);
                lines.add(String.format(Locale.ROOT, "| %s | %d | %.1f | %.1f | %.2f× |", path, ms.length, p50,
                        BenchmarkReport.percentile(ms, 95), p50 / bareP50));
            });
        }
        lines.add("");
        lines.add("Load average (1, 5, 15 min) at the start: " + loadBefore + "; at the end: "
                + BenchmarkReport.loadAverage() + ". Other work may share the machine: compare rows of one N, which "
                + "were measured interleaved.");
        lines.forEach(System.out::println);
        if (publish) {
            BenchmarkReport.writeSection(Path.of("docs/benchmarks.md"), "throughput", lines);
        }
    }

    private ThroughputBenchmark() {
    }
}
