package io.agentexec.bench;

import com.github.dockerjava.api.DockerClient;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.SandboxSession;
import io.agentexec.sandbox.docker.DockerBackend;
import io.agentexec.sandbox.docker.DockerBackendSettings;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * What this Docker daemon handles well: sandbox containers made (create, attach, start, the agent's greeting) with N
 * callers at once, each closing its sandbox at once (removed in the background, as a one-off's), through the engine
 * with no warm pool and no bound on concurrent creates. Each phase's removals are waited for after it and counted in
 * the phase's time, since a daemon busy removing makes the next containers slower. Chooses
 * {@code docker.max-concurrent-creates}.
 *
 *   bench/run.sh daemon [SECONDS_PER_PHASE] [ROUNDS]
 */
public final class DaemonBenchmark {
    private static final int[] CONCURRENCY = {1, 2, 4};
    /** A phase's removals must be done within this, else the phase is reported as unsettled. */
    private static final long SETTLE_LIMIT_MS = 120_000;

    public static void main(String[] args) throws Exception {
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 20;
        int rounds = args.length > 1 ? Integer.parseInt(args[1]) : 2;
        EngineSettings base = EngineSettings.load().withBackend(BackendChoice.DOCKER).withWarmPoolSize(0);
        DockerBackendSettings d = base.docker();
        // No bound of ours: what the daemon does with N at once is what is measured.
        DockerBackendSettings unbounded = new DockerBackendSettings(d.defaults(), d.warmImages(), 0, d.poolLimits(),
                d.workspace(), d.agentStartTimeout(), d.allowedNetworks(), d.allowedRuntimes(), d.runtimeHostPids(),
                new DockerBackendSettings.Removal(4, 1024, d.removal().closeWait()), d.runtimeProbe(), d.pool(), 64,
                DockerBackendSettings.Recycle.disabled());
        String loadBefore = BenchmarkReport.loadAverage();
        List<String> rows = new ArrayList<>();
        try (SandboxEngine engine = SandboxEngine.start(base.withDocker(unbounded))) {
            DockerClient docker = ((DockerBackend) engine.backend()).dockerClient();
            String owner = "/" + ProcessHandle.current().pid() + "/";
            // warm-up: the image's layers in the page cache, the client's connections
            for (int i = 0; i < 3; i++) {
                engine.openSession("python", engine.defaultLimits()).close();
            }
            settle(docker, owner);
            double[][] made = new double[CONCURRENCY.length][2];
            List<List<Double>> latencies = new ArrayList<>();
            for (int c : CONCURRENCY) {
                latencies.add(new ArrayList<>());
            }
            for (int round = 0; round < rounds; round++) {
                for (int k = 0; k < CONCURRENCY.length; k++) {
                    int c = CONCURRENCY[k];
                    ConcurrentLinkedQueue<Double> times = new ConcurrentLinkedQueue<>();
                    ExecutorService pool = Executors.newFixedThreadPool(c);
                    long start = System.nanoTime();
                    long deadline = start + TimeUnit.SECONDS.toNanos(seconds);
                    List<Future<Integer>> callers = new ArrayList<>();
                    for (int i = 0; i < c; i++) {
                        callers.add(pool.submit(() -> {
                            int n = 0;
                            while (System.nanoTime() < deadline) {
                                long t = System.nanoTime();
                                SandboxSession s = engine.openSession("python", engine.defaultLimits());
                                times.add((System.nanoTime() - t) / 1e6);
                                s.close();
                                n++;
                            }
                            return n;
                        }));
                    }
                    int n = 0;
                    for (Future<Integer> f : callers) {
                        n += f.get();
                    }
                    double phase = (System.nanoTime() - start) / 1e9;
                    double settled = settle(docker, owner);
                    pool.shutdown();
                    made[k][0] += n;
                    made[k][1] += phase + settled;
                    latencies.get(k).addAll(times);
                    System.err.printf(Locale.ROOT, "c=%d: %d made in %.1f s, removals %.1f s more%n", c, n, phase, settled);
                }
            }
            for (int k = 0; k < CONCURRENCY.length; k++) {
                double[] ms = latencies.get(k).stream().mapToDouble(Double::doubleValue).toArray();
                rows.add(String.format(Locale.ROOT, "| %d | %d | %.2f | %.0f | %.0f |", CONCURRENCY[k], (int) made[k][0],
                        made[k][0] / made[k][1], BenchmarkReport.percentile(ms, 50), BenchmarkReport.percentile(ms, 99)));
            }
        }
        List<String> lines = new ArrayList<>();
        lines.add("## Docker daemon: sandbox containers made per second");
        lines.add("");
        lines.add(BenchmarkReport.machineLine() + " `bench/run.sh daemon " + seconds + " " + rounds + "`: N callers each "
                + "open a sandbox (create, attach, start, the agent's greeting; no warm pool, no bound of ours) and "
                + "close it at once (removed in the background); " + rounds + " phases of " + seconds + " s per N, "
                + "taking turns; each phase's time includes waiting for its removals to finish.");
        lines.add("");
        lines.add("| callers | made | made/s (removals included) | open p50 ms | open p99 ms |");
        lines.add("|---:|---:|---:|---:|---:|");
        lines.addAll(rows);
        lines.add("");
        lines.add("Load average (1, 5, 15 min) at the start: " + loadBefore + "; at the end: "
                + BenchmarkReport.loadAverage() + ".");
        lines.forEach(System.out::println);
        BenchmarkReport.writeSection(Path.of("docs/benchmarks.md"), "daemon", lines);
    }

    private static double settle(DockerClient docker, String owner) throws InterruptedException {
        return DaemonSettle.settle(docker, owner, SETTLE_LIMIT_MS);
    }

    private DaemonBenchmark() {
    }
}
