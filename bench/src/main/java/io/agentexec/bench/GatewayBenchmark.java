package io.agentexec.bench;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.agentexec.gateway.Gateway;
import io.agentexec.gateway.tenant.TenantRegistry;
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
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;

/**
 * End-to-end latency of {@code print(1)} in a warm sandbox, at concurrency 1 and 16, in one run:
 * raw {@code docker exec}, the engine alone (a held session), and HTTP through the gateway over
 * the engine and over a single-node cluster (H2 in memory). Each caller owns its sandbox.
 *
 *   bench/run.sh gateway [SAMPLES_PER_CALLER_AT_1] [SAMPLES_PER_CALLER_AT_16]
 */
public final class GatewayBenchmark {
    private static final String CODE = "print(1)";
    private static final String KEY = "bench-key-0123456789";
    private static final int[] CONCURRENCY = {1, 16};

    @FunctionalInterface
    interface Call {
        void run() throws Exception;
    }

    @FunctionalInterface
    interface CallerFactory {
        Call forCaller(int index) throws Exception;
    }

    private record Row(String path, int concurrency, double[] ms) { }

    public static void main(String[] args) throws Exception {
        int samplesAt1 = args.length > 0 ? Integer.parseInt(args[0]) : 200;
        int samplesAt16 = args.length > 1 ? Integer.parseInt(args[1]) : 25;
        List<Row> rows = new ArrayList<>();

        String container = startContainer();
        try {
            for (int c : CONCURRENCY) {
                rows.add(measure("raw `docker exec` CLI (python3 -c)", c, c == 1 ? samplesAt1 / 4 : samplesAt16 / 4,
                        i -> () -> dockerExec(container)));
            }
        } finally {
            run("docker", "rm", "-f", container);
        }

        EngineSettings engineSettings = EngineSettings.fromConfig(ConfigFactory.load());
        try (SandboxEngine engine = SandboxEngine.start(engineSettings)) {
            Limits limits = engine.defaultLimits();
            ExecutionRequest request = ExecutionRequest.of("python", CODE, limits);
            List<SandboxSession> sessions = new ArrayList<>();
            try {
                for (int i = 0; i < 16; i++) {
                    sessions.add(engine.openSession("python", limits));
                }
                for (int c : CONCURRENCY) {
                    rows.add(measure("engine alone, held session", c, c == 1 ? samplesAt1 : samplesAt16, i -> () -> {
                        ExecutionResult r = sessions.get(i).execute(request);
                        if (r.verdict() != Verdict.OK) {
                            throw new IllegalStateException(r.message());
                        }
                    }));
                }
            } finally {
                sessions.forEach(SandboxSession::close);
            }
        }

        for (String backend : List.of("engine", "cluster")) {
            Path dir = Files.createTempDirectory("agentexec-bench-gateway");
            Path keys = dir.resolve("keys.json");
            Files.writeString(keys, "{\"tenants\":[{\"id\":\"bench\",\"keySha256\":[\"" + TenantRegistry.sha256(KEY)
                    + "\"],\"requestsPerSecond\":100000,\"burst\":100000,\"maxLiveSandboxes\":64}]}");
            Map<String, Object> o = new HashMap<>();
            o.put("agentexec.gateway.port", 0);
            o.put("agentexec.gateway.backend", backend);
            o.put("agentexec.gateway.auth.keys-file", keys.toString());
            o.put("agentexec.gateway.engine.slots", 16);
            o.put("agentexec.cluster.worker.slots", 16);
            o.put("agentexec.cluster.persistence.url", "jdbc:h2:mem:bench-gateway;DB_CLOSE_DELAY=-1;DATABASE_TO_UPPER=false");
            o.put("pekko.remote.artery.canonical.port", 0);
            o.put("pekko.loglevel", "WARNING");
            Config config = ConfigFactory.parseMap(o).withFallback(ConfigFactory.load()).resolve();
            try (Gateway gateway = Gateway.start(config, new PrintStream(new ByteArrayOutputStream()))) {
                String base = "http://127.0.0.1:" + gateway.httpPort();
                HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
                waitReady(http, base);
                List<String> sandboxes = new ArrayList<>();
                for (int i = 0; i < 16; i++) {
                    String body = send(http, base + "/v1/sandboxes", "{\"language\":\"python\"}", 201);
                    sandboxes.add(body.replaceAll("(?s).*\"id\"\\s*:\\s*\"([^\"]+)\".*", "$1"));
                }
                String exec = "{\"language\":\"python\",\"code\":\"" + CODE + "\"}";
                for (int c : CONCURRENCY) {
                    rows.add(measure("gateway HTTP over the " + backend, c, c == 1 ? samplesAt1 : samplesAt16, i -> {
                        String url = base + "/v1/sandboxes/" + sandboxes.get(i) + "/executions";
                        return () -> {
                            String body = send(http, url, exec, 200);
                            if (!body.contains("\"verdict\":\"OK\"")) {
                                throw new IllegalStateException(body);
                            }
                        };
                    }));
                }
                for (String id : sandboxes) {
                    http.send(HttpRequest.newBuilder(URI.create(base + "/v1/sandboxes/" + id)).DELETE()
                            .header("Authorization", "Bearer " + KEY).build(), HttpResponse.BodyHandlers.discarding());
                }
            }
        }
        report(rows, samplesAt1, samplesAt16);
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

    /** Warm-up, then {@code samples} timed calls per caller, {@code callers} callers at once. */
    private static Row measure(String path, int callers, int samples, CallerFactory factory) throws Exception {
        ConcurrentLinkedQueue<Double> times = new ConcurrentLinkedQueue<>();
        ConcurrentLinkedQueue<Throwable> errors = new ConcurrentLinkedQueue<>();
        CountDownLatch done = new CountDownLatch(callers);
        for (int i = 0; i < callers; i++) {
            Call call = factory.forCaller(i);
            Thread t = new Thread(() -> {
                try {
                    for (int w = 0; w < 3; w++) {
                        call.run();
                    }
                    for (int s = 0; s < samples; s++) {
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
            throw new IllegalStateException(path + " failed", errors.peek());
        }
        double[] ms = times.stream().mapToDouble(Double::doubleValue).toArray();
        System.err.printf(Locale.ROOT, "%-40s c=%-2d n=%-4d p50 %.1f p99 %.1f%n", path, callers, ms.length,
                BenchmarkReport.percentile(ms, 50), BenchmarkReport.percentile(ms, 99));
        return new Row(path, callers, ms);
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
        lines.add("## Gateway: end-to-end HTTP latency of `print(1)` in a warm sandbox");
        lines.add("");
        lines.add(BenchmarkReport.machineLine() + " `bench/run.sh gateway " + samplesAt1 + " " + samplesAt16
                + "`; times in ms from the caller, after a warm-up; at concurrency 16 each of 16 callers owns a sandbox.");
        lines.add("");
        lines.add("| path | concurrency | runs | p50 | p99 |");
        lines.add("|---|---:|---:|---:|---:|");
        for (Row r : rows) {
            lines.add(String.format(Locale.ROOT, "| %s | %d | %d | %.1f | %.1f |", r.path(), r.concurrency(), r.ms().length,
                    BenchmarkReport.percentile(r.ms(), 50), BenchmarkReport.percentile(r.ms(), 99)));
        }
        lines.add("");
        double engine1 = p50(rows, "engine alone, held session", 1);
        double cluster1 = p50(rows, "gateway HTTP over the cluster", 1);
        double overhead = cluster1 - engine1;
        lines.add(String.format(Locale.ROOT, "Target (issue 5): gateway plus cluster add at most 10 ms at p50 over the engine "
                + "(concurrency 1): %.1f ms vs %.1f ms = +%.1f ms — %s.", cluster1, engine1, overhead, overhead <= 10 ? "met" : "NOT met"));
        double engine16 = p50(rows, "engine alone, held session", 16);
        double cluster16 = p50(rows, "gateway HTTP over the cluster", 16);
        lines.add(String.format(Locale.ROOT, "At concurrency 16 (2 cores): %.1f ms vs %.1f ms = +%.1f ms.", cluster16, engine16,
                cluster16 - engine16));
        BenchmarkReport.writeSection(Path.of("docs/benchmarks.md"), "gateway", lines);
        lines.forEach(System.out::println);
    }

    private static double p50(List<Row> rows, String path, int concurrency) {
        return rows.stream().filter(r -> r.path().equals(path) && r.concurrency() == concurrency).findFirst()
                .map(r -> BenchmarkReport.percentile(r.ms(), 50)).orElse(Double.NaN);
    }
}
