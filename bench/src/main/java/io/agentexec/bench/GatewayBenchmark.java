package io.agentexec.bench;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.agentexec.gateway.tenant.TenantRegistry;
import io.agentexec.node.Guardian;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.SandboxSession;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;

/**
 * End-to-end latency of {@code print(1)}, in one run: raw {@code docker exec}, the engine alone (a
 * held session), and HTTP through the gateway over the engine and over a single-node cluster whose
 * journal is an H2 file set up as {@code config/local.conf} sets it (and, for comparison, H2 in
 * memory; and with persist-before-run off, to show what running only after the attempt is persisted
 * costs). Each caller owns its sandbox. Then one-off executions (no sandbox: a fresh container each).
 *
 * <p>Every path is up at once and the paths are measured interleaved (at concurrency 1 one call of
 * each in turn; at 16 in alternating rounds), so that load from elsewhere on the machine falls on all
 * of them alike rather than on whichever phase it happened to meet. HTTP is measured with a minimal
 * keep-alive client ({@link HttpLite}); one row per gateway path repeats it with the JDK's HttpClient.
 *
 *   bench/run.sh gateway [SAMPLES_PER_CALLER_AT_1] [SAMPLES_PER_CALLER_AT_16]
 */
public final class GatewayBenchmark {
    private static final String CODE = "print(1)";
    private static final String KEY = "bench-key-0123456789";
    private static final int CALLERS = 16;
    private static final int WARM_UP_CALLS = 3;
    /** Rounds the concurrency-16 samples are split into, alternating between the paths. */
    private static final int ROUNDS_AT_16 = 5;
    /** Pause between one-offs, so that each engine's warm pool is full again (a container start is ~0.3 s). */
    private static final Duration ONE_OFF_PAUSE = Duration.ofMillis(500);
    private static final String ENGINE = "engine alone, held session";
    private static final String GW_ENGINE = "gateway HTTP over the engine";
    private static final String GW_CLUSTER = "gateway HTTP over the cluster (H2 file journal, as config/local.conf)";
    private static final String GW_CLUSTER_MEM = "gateway HTTP over the cluster (H2 in-memory journal)";
    /** The cluster as before persist-before-run (the start persisted while the code runs), for its cost. */
    private static final String GW_CLUSTER_EAGER = "gateway HTTP over the cluster (H2 file), persist-before-run off";
    private static final String ONE_OFF_CLUSTER = "one-off (fresh container), gateway HTTP over the cluster (H2 file)";
    private static final String ONE_OFF_CLUSTER_EAGER = ONE_OFF_CLUSTER + ", persist-before-run off";
    private static final String JDK = ", JDK HttpClient";

    @FunctionalInterface
    interface CallerFactory {
        Call forCaller(int index) throws Exception;
    }

    private record Row(String path, int concurrency, double[] ms) { }

    /** Connections the callers opened, closed before the gateways stop (which would wait for them). */
    private static final List<HttpLite> CONNECTIONS = new java.util.concurrent.CopyOnWriteArrayList<>();

    public static void main(String[] args) throws Exception {
        io.agentexec.node.AsyncStages.onTheCommonPool(); // the nodes here run as bin/agentexec serve's do
        int samplesAt1 = args.length > 0 ? Integer.parseInt(args[0]) : 200;
        int samplesAt16 = args.length > 1 ? Integer.parseInt(args[1]) : 25;
        List<Row> rows = new ArrayList<>();

        String container = startContainer();
        try {
            rows.add(measure("raw `docker exec` CLI (python3 -c)", 1, samplesAt1 / 4, i -> () -> dockerExec(container)));
            rows.add(measure("raw `docker exec` CLI (python3 -c)", CALLERS, samplesAt16 / 4, i -> () -> dockerExec(container)));
        } finally {
            run("docker", "rm", "-f", container);
        }

        Path dir = Files.createTempDirectory("agentexec-bench-gateway");
        Path keys = dir.resolve("keys.json");
        Files.writeString(keys, "{\"tenants\":[{\"id\":\"bench\",\"keySha256\":[\"" + TenantRegistry.sha256(KEY)
                + "\"],\"requestsPerSecond\":100000,\"burst\":100000,\"maxLiveSandboxes\":64}]}");
        EngineSettings engineSettings = EngineSettings.fromConfig(ConfigFactory.load());
        try (SandboxEngine engine = SandboxEngine.start(engineSettings);
             Guardian.Node overEngine = Guardian.start(gatewayConfig("engine", keys, ""), silent());
             Guardian.Node overCluster = Guardian.start(gatewayConfig("cluster", keys, Journals.localH2Url(dir.resolve("journal"))), silent());
             Guardian.Node overClusterMem = Guardian.start(gatewayConfig("cluster", keys,
                     "jdbc:h2:mem:bench-gateway;DB_CLOSE_DELAY=-1;DATABASE_TO_UPPER=false"), silent());
             Guardian.Node overClusterEager = Guardian.start(gatewayConfig("cluster", keys,
                     Journals.localH2Url(dir.resolve("journal-eager")), false), silent())) {
            Limits limits = engine.defaultLimits();
            ExecutionRequest request = ExecutionRequest.of("python", CODE, limits);
            List<SandboxSession> sessions = new ArrayList<>();
            HttpClient jdk = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
            Map<Guardian.Node, List<String>> sandboxes = new LinkedHashMap<>();
            try {
                for (int i = 0; i < CALLERS; i++) {
                    sessions.add(engine.openSession("python", limits));
                }
                for (Guardian.Node g : List.of(overEngine, overCluster, overClusterMem, overClusterEager)) {
                    sandboxes.put(g, createSandboxes(jdk, g));
                }
                Map<String, CallerFactory> paths = new LinkedHashMap<>();
                paths.put(ENGINE, i -> () -> check(sessions.get(i).execute(request)));
                paths.put(GW_ENGINE, lite(overEngine, sandboxes.get(overEngine)));
                paths.put(GW_CLUSTER, lite(overCluster, sandboxes.get(overCluster)));
                paths.put(GW_CLUSTER_MEM, lite(overClusterMem, sandboxes.get(overClusterMem)));
                paths.put(GW_CLUSTER_EAGER, lite(overClusterEager, sandboxes.get(overClusterEager)));
                paths.put(GW_ENGINE + JDK, jdk(jdk, overEngine, sandboxes.get(overEngine)));
                paths.put(GW_CLUSTER + JDK, jdk(jdk, overCluster, sandboxes.get(overCluster)));
                rows.addAll(interleavedAt1(paths, samplesAt1));

                Map<String, CallerFactory> at16 = new LinkedHashMap<>();
                for (String path : List.of(ENGINE, GW_ENGINE, GW_CLUSTER)) {
                    at16.put(path, paths.get(path));
                }
                rows.addAll(roundsAt16(at16, samplesAt16));

                String oneOff = "{\"language\":\"python\",\"code\":\"" + CODE + "\"}";
                Map<String, CallerFactory> oneOffs = new LinkedHashMap<>();
                oneOffs.put("one-off (fresh container), engine.execute", i -> () -> check(engine.execute(request)));
                oneOffs.put("one-off (fresh container), gateway HTTP over the engine", oneOffLite(overEngine, oneOff));
                oneOffs.put(ONE_OFF_CLUSTER, oneOffLite(overCluster, oneOff));
                oneOffs.put(ONE_OFF_CLUSTER_EAGER, oneOffLite(overClusterEager, oneOff));
                rows.addAll(pacedOneOffs(oneOffs, Math.max(10, samplesAt1 / 5)));
            } finally {
                for (HttpLite c : CONNECTIONS) {
                    c.close();
                }
                sessions.forEach(SandboxSession::close);
                sandboxes.forEach((g, ids) -> ids.forEach(id -> delete(jdk, g, id)));
            }
        }
        report(rows, samplesAt1, samplesAt16);
    }

    private static PrintStream silent() {
        return new PrintStream(new ByteArrayOutputStream());
    }

    private static Config gatewayConfig(String backend, Path keys, String journalUrl) {
        return gatewayConfig(backend, keys, journalUrl, true);
    }

    private static Config gatewayConfig(String backend, Path keys, String journalUrl, boolean persistBeforeRun) {
        Map<String, Object> o = new HashMap<>();
        o.put("agentexec.cluster.execution.persist-before-run", persistBeforeRun);
        o.put("agentexec.gateway.port", 0);
        // three gateways in this JVM: each its own metrics listener
        o.put("agentexec.gateway.metrics.port", 0);
        o.put("agentexec.gateway.backend", backend);
        o.put("agentexec.gateway.auth.keys-file", keys.toString());
        o.put("agentexec.gateway.engine.slots", CALLERS);
        o.put("agentexec.cluster.worker.slots", CALLERS);
        if (!journalUrl.isEmpty()) {
            o.put("agentexec.cluster.persistence.url", journalUrl);
        }
        o.put("pekko.remote.artery.canonical.port", 0);
        o.put("pekko.loglevel", "WARNING");
        return ConfigFactory.parseMap(o).withFallback(ConfigFactory.load()).resolve();
    }

    private static List<String> createSandboxes(HttpClient http, Guardian.Node gateway) throws Exception {
        String base = "http://127.0.0.1:" + gateway.httpPort();
        waitReady(http, base);
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < CALLERS; i++) {
            String body = send(http, base + "/v1/sandboxes", "{\"language\":\"python\"}", 201);
            ids.add(body.replaceAll("(?s).*\"id\"\\s*:\\s*\"([^\"]+)\".*", "$1"));
        }
        return ids;
    }

    private static void delete(HttpClient http, Guardian.Node gateway, String id) {
        try {
            http.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + gateway.httpPort() + "/v1/sandboxes/" + id))
                    .DELETE().header("Authorization", "Bearer " + KEY).build(), HttpResponse.BodyHandlers.discarding());
        } catch (Exception e) {
            System.err.println("deleting sandbox " + id + ": " + e);
        }
    }

    /** Each caller its own sandbox and its own kept-alive connection. */
    private static CallerFactory lite(Guardian.Node gateway, List<String> sandboxes) {
        String exec = "{\"language\":\"python\",\"code\":\"" + CODE + "\"}";
        return i -> {
            HttpLite http = new HttpLite(gateway.httpPort(), KEY);
            CONNECTIONS.add(http);
            String path = "/v1/sandboxes/" + sandboxes.get(i) + "/executions";
            return () -> checkOk(http.post(path, exec));
        };
    }

    private static CallerFactory jdk(HttpClient http, Guardian.Node gateway, List<String> sandboxes) {
        String exec = "{\"language\":\"python\",\"code\":\"" + CODE + "\"}";
        return i -> {
            String url = "http://127.0.0.1:" + gateway.httpPort() + "/v1/sandboxes/" + sandboxes.get(i) + "/executions";
            return () -> checkOk(new HttpLite.Response(200, send(http, url, exec, 200)));
        };
    }

    private static CallerFactory oneOffLite(Guardian.Node gateway, String exec) {
        return i -> {
            HttpLite http = new HttpLite(gateway.httpPort(), KEY);
            CONNECTIONS.add(http);
            return () -> checkOk(http.post("/v1/executions", exec));
        };
    }

    private static void check(ExecutionResult r) {
        if (r.verdict() != Verdict.OK) {
            throw new IllegalStateException(r.message());
        }
    }

    private static void checkOk(HttpLite.Response r) {
        if (r.status() != 200 || !r.body().contains("\"verdict\":\"OK\"")) {
            throw new IllegalStateException(r.status() + " " + r.body());
        }
    }

    private static void waitReady(HttpClient http, String base) throws Exception {
        for (int i = 0; i < 300; i++) {
            int status = http.send(HttpRequest.newBuilder(URI.create(base + "/readyz")).build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode();
            if (status == 200) {
                return;
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("the gateway never became ready");
    }

    private static String send(HttpClient http, String url, String json, int expected) throws Exception {
        HttpResponse<String> r = http.send(HttpRequest.newBuilder(URI.create(url)).header("Authorization", "Bearer " + KEY)
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(json)).build(),
                HttpResponse.BodyHandlers.ofString());
        if (r.statusCode() != expected) {
            throw new IllegalStateException(r.statusCode() + " " + r.body());
        }
        return r.body();
    }

    /** Concurrency 1: after a warm-up, one call of each path in turn, {@code samples} times. */
    private static List<Row> interleavedAt1(Map<String, CallerFactory> paths, int samples) throws Exception {
        return interleaved(paths, samples, Duration.ZERO, 1);
    }

    private static List<Row> pacedOneOffs(Map<String, CallerFactory> paths, int samples) throws Exception {
        return interleaved(paths, samples, ONE_OFF_PAUSE, 1);
    }

    private static List<Row> interleaved(Map<String, CallerFactory> paths, int samples, Duration pause, int concurrency)
            throws Exception {
        Map<String, InTurn.Opener> openers = new LinkedHashMap<>();
        paths.forEach((path, factory) -> openers.put(path, () -> factory.forCaller(0)));
        List<Row> rows = new ArrayList<>();
        InTurn.measure(openers, WARM_UP_CALLS, samples, pause)
                .forEach((path, ms) -> rows.add(printed(new Row(path, concurrency, ms))));
        return rows;
    }

    /** Concurrency 16: the samples in rounds, each round every path in turn with all its callers. */
    private static List<Row> roundsAt16(Map<String, CallerFactory> paths, int samples) throws Exception {
        Map<String, List<Call>> callers = new LinkedHashMap<>();
        for (var e : paths.entrySet()) {
            List<Call> calls = new ArrayList<>();
            for (int i = 0; i < CALLERS; i++) {
                calls.add(e.getValue().forCaller(i));
            }
            callers.put(e.getKey(), calls);
            together(calls, WARM_UP_CALLS, new ConcurrentLinkedQueue<>());
        }
        Map<String, ConcurrentLinkedQueue<Double>> times = new LinkedHashMap<>();
        callers.keySet().forEach(k -> times.put(k, new ConcurrentLinkedQueue<>()));
        int perRound = Math.max(1, samples / ROUNDS_AT_16);
        for (int done = 0; done < samples; done += perRound) {
            int n = Math.min(perRound, samples - done);
            for (var e : callers.entrySet()) {
                together(e.getValue(), n, times.get(e.getKey()));
            }
        }
        List<Row> rows = new ArrayList<>();
        times.forEach((path, q) -> rows.add(printed(new Row(path, CALLERS,
                q.stream().mapToDouble(Double::doubleValue).toArray()))));
        return rows;
    }

    /** Every caller on a thread of its own, {@code n} timed calls each. */
    private static void together(List<Call> calls, int n, ConcurrentLinkedQueue<Double> times) throws Exception {
        ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
        CountDownLatch done = new CountDownLatch(calls.size());
        for (Call call : calls) {
            Thread t = new Thread(() -> {
                try {
                    for (int s = 0; s < n; s++) {
                        long t0 = System.nanoTime();
                        call.run();
                        times.add((System.nanoTime() - t0) / 1e6);
                    }
                } catch (Throwable e) {
                    errors.add(e);
                } finally {
                    done.countDown();
                }
            });
            t.start();
        }
        done.await();
        if (!errors.isEmpty()) {
            throw new IllegalStateException("a caller failed", errors.peek());
        }
    }

    /** Warm-up, then {@code samples} timed calls per caller, {@code callers} callers at once. */
    private static Row measure(String path, int callers, int samples, CallerFactory factory) throws Exception {
        List<Call> calls = new ArrayList<>();
        for (int i = 0; i < callers; i++) {
            calls.add(factory.forCaller(i));
        }
        together(calls, WARM_UP_CALLS, new ConcurrentLinkedQueue<>());
        ConcurrentLinkedQueue<Double> times = new ConcurrentLinkedQueue<>();
        together(calls, samples, times);
        return printed(new Row(path, callers, times.stream().mapToDouble(Double::doubleValue).toArray()));
    }

    private static Row printed(Row row) {
        System.err.printf(Locale.ROOT, "%-75s c=%-2d n=%-4d p50 %.1f p99 %.1f%n", row.path(), row.concurrency(),
                row.ms().length, BenchmarkReport.percentile(row.ms(), 50), BenchmarkReport.percentile(row.ms(), 99));
        return row;
    }

    private static String startContainer() throws Exception {
        String name = "agentexec-bench-gateway-" + ProcessHandle.current().pid();
        run("docker", "run", "-d", "--rm", "--name", name, "--network", "none", "--label", "io.agentexec.bench=true",
                "agentexec/python:bookworm", "sleep", "infinity");
        return name;
    }

    private static void dockerExec(String container) throws Exception {
        String out = run("docker", "exec", container, "python3", "-c", CODE);
        if (!out.equals("1\n")) {
            throw new IllegalStateException("docker exec printed " + out);
        }
    }

    private static String run(String... command) throws Exception {
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (p.waitFor() != 0) {
            throw new IllegalStateException(String.join(" ", command) + ": " + out);
        }
        return out;
    }

    private static void report(List<Row> rows, int samplesAt1, int samplesAt16) throws Exception {
        List<String> lines = new ArrayList<>();
        lines.add("## Guardian.Node: end-to-end HTTP latency of `print(1)`");
        lines.add("");
        lines.add(BenchmarkReport.machineLine() + " `bench/run.sh gateway " + samplesAt1 + " " + samplesAt16
                + "`; times in ms from the caller, after a warm-up. All paths are up at once and measured interleaved "
                + "(concurrency 1: one call of each path in turn; 16: alternating rounds, each of 16 callers owning a "
                + "sandbox), so that load from elsewhere falls on all of them alike. HTTP rows use a minimal keep-alive "
                + "client (one write per request); the `JDK HttpClient` rows repeat two of them with `java.net.http`. "
                + "One-offs run with a " + ONE_OFF_PAUSE.toMillis() + " ms pause between calls, so each engine's warm "
                + "pool is full again.");
        lines.add("");
        lines.add("| path | concurrency | runs | p50 | p99 |");
        lines.add("|---|---:|---:|---:|---:|");
        for (Row r : rows) {
            lines.add(String.format(Locale.ROOT, "| %s | %d | %d | %.1f | %.1f |", r.path(), r.concurrency(), r.ms().length,
                    BenchmarkReport.percentile(r.ms(), 50), BenchmarkReport.percentile(r.ms(), 99)));
        }
        lines.add("");
        double engine1 = p50(rows, ENGINE, 1);
        double cluster1 = p50(rows, GW_CLUSTER, 1);
        double overhead = cluster1 - engine1;
        lines.add(String.format(Locale.ROOT, "Target (issue 5): gateway plus cluster add at most 10 ms at p50 over the engine "
                + "(concurrency 1, H2 file journal): %.1f ms vs %.1f ms = +%.1f ms — %s.", cluster1, engine1, overhead,
                overhead <= 10 ? "met" : "NOT met"));
        lines.add(String.format(Locale.ROOT, "With the journal in memory: +%.1f ms; with the JDK HttpClient as the caller: +%.1f ms.",
                p50(rows, GW_CLUSTER_MEM, 1) - engine1, p50(rows, GW_CLUSTER + JDK, 1) - engine1));
        lines.add(String.format(Locale.ROOT, "Persist before run (the default: the code starts only once its attempt is in "
                + "the journal) against the start persisted while the code runs (`persist-before-run = off`), both H2 "
                + "file, interleaved: sandbox %.1f vs %.1f ms (%+.1f ms), one-off %.1f vs %.1f ms (%+.1f ms) at p50.",
                cluster1, p50(rows, GW_CLUSTER_EAGER, 1), cluster1 - p50(rows, GW_CLUSTER_EAGER, 1),
                p50(rows, ONE_OFF_CLUSTER, 1), p50(rows, ONE_OFF_CLUSTER_EAGER, 1),
                p50(rows, ONE_OFF_CLUSTER, 1) - p50(rows, ONE_OFF_CLUSTER_EAGER, 1)));
        double engine16 = p50(rows, ENGINE, CALLERS);
        double cluster16 = p50(rows, GW_CLUSTER, CALLERS);
        lines.add(String.format(Locale.ROOT, "At concurrency 16 (2 cores, CPU-bound): %.1f ms vs %.1f ms = +%.1f ms.",
                cluster16, engine16, cluster16 - engine16));
        BenchmarkReport.writeSection(Path.of("docs/benchmarks.md"), "gateway", lines);
        lines.forEach(System.out::println);
    }

    private static double p50(List<Row> rows, String path, int concurrency) {
        return rows.stream().filter(r -> r.path().equals(path) && r.concurrency() == concurrency).findFirst()
                .map(r -> BenchmarkReport.percentile(r.ms(), 50)).orElse(Double.NaN);
    }
}
