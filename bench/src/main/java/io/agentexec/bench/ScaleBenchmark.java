package io.agentexec.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Scale-out: completed one-off executions per second through the gateway of a many-daemon cluster
 * ({@code scripts/cluster-up.sh}: one gateway node, workers each on a dockerd of its own, PostgreSQL journal) with
 * 1, then 2, then 3 worker daemons, under saturation (more callers than the cluster has slots, each sending
 * {@code print(sum(range(1000)))} again as soon as it has its answer). Workers are added with
 * {@code scripts/cluster-up.sh --add-worker} to the running cluster, as an operator scales out. The cluster is
 * removed at the end (and on the way out of this JVM).
 *
 *   bench/run.sh scale [SECONDS_PER_PHASE] [CALLERS] [MAX_WORKERS]       (defaults 30, 24, 3)
 *
 * Runs as root on a machine prepared by scripts/setup.sh, like the scripts. Its cluster has its own directory, name
 * and ports (AGENTEXEC_CLUSTER_DIR /tmp/aec-scale, schema agentexec_cluster_scale, ports 26520/26080/26464 and up),
 * so it never meets a developer's cluster.
 */
public final class ScaleBenchmark {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String CODE = "print(sum(range(1000)))";
    /**
     * A caller refused (503 overloaded or 429, answered at once) waits this long before trying again, so that refusals do
     * not spin the machine's cores the workers need; with more callers than slots plus queue, slots stay busy.
     */
    private static final long REFUSED_PAUSE_MS = 50;

    private record Phase(int workers, int completed, int refused, int failed, double seconds, double[] latenciesMs) {
        double perSecond() {
            return completed / seconds;
        }
    }

    public static void main(String[] args) throws Exception {
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 30;
        int callers = args.length > 1 ? Integer.parseInt(args[1]) : 24;
        int maxWorkers = args.length > 2 ? Integer.parseInt(args[2]) : 3;
        ClusterScripts cluster = new ClusterScripts("scale", 26520, 26080, 26464);
        JsonNode state = cluster.up("1");
        String url = state.get("gateway").get("url").asText();
        int slots = Integer.parseInt(System.getenv().getOrDefault("AGENTEXEC_WORKER_SLOTS", "4"));
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(10)).build();
        List<Phase> phases = new ArrayList<>();
        for (int workers = 1; workers <= maxWorkers; workers++) {
            if (workers > 1) {
                cluster.run("scripts/cluster-up.sh", "--add-worker");
            }
            run(http, url, workers, callers, Math.max(5, seconds / 3)); // warm-up: the new worker's pool, JIT
            Phase p = run(http, url, workers, callers, seconds);
            System.err.printf(Locale.ROOT, "[scale] %d worker(s): %.2f executions/s%n", workers, p.perSecond());
            phases.add(p);
        }
        cluster.down();

        List<String> lines = new ArrayList<>();
        lines.add("## Scale-out: a many-daemon cluster with 1, 2, 3 worker daemons");
        lines.add("");
        lines.add(BenchmarkReport.machineLine());
        lines.add(String.format(Locale.ROOT, "`scripts/cluster-up.sh 1`, then `--add-worker` twice: one gateway node and "
                + "N worker nodes on loopback, each worker on a dockerd of its own, PostgreSQL journal, mutual TLS; "
                + "%d slots a worker. %d callers through the gateway's HTTP API, each sending `%s` (a one-off: a fresh "
                + "container) again as soon as it is answered (a refusal: again after %d ms); %d s per phase after a "
                + "warm-up. `bench/run.sh scale %d %d %d`.", slots, callers, CODE, REFUSED_PAUSE_MS, seconds, seconds,
                callers, maxWorkers));
        lines.add("");
        lines.add("| worker daemons | callers | completed | refused (overloaded) | failed | executions/s | p50 ms | p99 ms |");
        lines.add("|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (Phase p : phases) {
            lines.add(String.format(Locale.ROOT, "| %d | %d | %d | %d | %d | %.2f | %.0f | %.0f |", p.workers(), callers,
                    p.completed(), p.refused(), p.failed(), p.perSecond(), pct(p, 50), pct(p, 99)));
        }
        lines.add("");
        lines.add(String.format(Locale.ROOT, "Scale-out factor (executions/s, %d daemons / 1): **%.2f ×**. All nodes, "
                + "dockerds and containers share this machine's cores, so the factor says what one more daemon adds "
                + "here, not on machines of their own.", phases.size(), phases.get(phases.size() - 1).perSecond()
                / Math.max(1e-9, phases.get(0).perSecond())));
        BenchmarkReport.writeSection(Path.of("docs/benchmarks.md"), "scale", lines);
        System.out.println(String.join("\n", lines));
    }


    private static double pct(Phase p, double q) {
        return p.latenciesMs().length == 0 ? Double.NaN : BenchmarkReport.percentile(p.latenciesMs(), q);
    }

    /** Callers press on the gateway for {@code seconds}; answers that arrive within the window are counted. */
    private static Phase run(HttpClient http, String url, int workers, int callers, int seconds) throws Exception {
        String body = JSON.createObjectNode().put("language", "python").put("code", CODE).toString();
        HttpRequest request = HttpRequest.newBuilder(URI.create(url + "/v1/executions")).timeout(Duration.ofMinutes(2))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(body)).build();
        AtomicInteger completed = new AtomicInteger();
        AtomicInteger refused = new AtomicInteger();
        AtomicInteger failed = new AtomicInteger();
        ConcurrentLinkedQueue<Double> latencies = new ConcurrentLinkedQueue<>();
        long start = System.nanoTime();
        long end = start + TimeUnit.SECONDS.toNanos(seconds);
        CountDownLatch done = new CountDownLatch(callers);
        for (int c = 0; c < callers; c++) {
            Thread t = new Thread(() -> {
                try {
                    while (System.nanoTime() < end) {
                        long t0 = System.nanoTime();
                        int status;
                        String answer;
                        try {
                            HttpResponse<String> r = http.send(request, HttpResponse.BodyHandlers.ofString());
                            status = r.statusCode();
                            answer = r.body();
                        } catch (IOException e) {
                            status = -1;
                            answer = e.toString();
                        }
                        long t1 = System.nanoTime();
                        if (t1 > end) {
                            break; // answered after the window: not counted
                        }
                        if (status == 200 && JSON.readTree(answer).path("verdict").asText().equals("OK")) {
                            completed.incrementAndGet();
                            latencies.add((t1 - t0) / 1e6);
                        } else if (status == 503 || status == 429) {
                            refused.incrementAndGet();
                            Thread.sleep(REFUSED_PAUSE_MS);
                        } else {
                            failed.incrementAndGet();
                            System.err.println("[scale] " + status + " " + answer);
                        }
                    }
                } catch (Exception e) {
                    System.err.println("[scale] caller stopped: " + e);
                } finally {
                    done.countDown();
                }
            }, "caller-" + c);
            t.setDaemon(true);
            t.start();
        }
        done.await();
        double took = Math.min(System.nanoTime(), end) - start;
        return new Phase(workers, completed.get(), refused.get(), failed.get(), took / 1e9,
                latencies.stream().mapToDouble(Double::doubleValue).toArray());
    }

}
