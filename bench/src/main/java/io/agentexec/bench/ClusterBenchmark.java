package io.agentexec.bench;

import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.ClusterConfig;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Throughput of one-off executions ({@code print(sum(range(1000)))}, a fresh container each) at
 * saturation: the bare engine with as many callers as the worker has slots, against the same
 * engine behind a single-node cluster (H2 journal) with callers enough to keep its queue full.
 * Then p99 latency of the accepted executions when twice the slots-plus-queue callers press on it.
 *
 *   bench/run.sh cluster [SECONDS_PER_PHASE] [SLOTS] [QUEUE]
 */
public final class ClusterBenchmark {

    private record Phase(int completed, int refused, double seconds, double[] latenciesMs) {
        double perSecond() {
            return completed / seconds;
        }
    }

    @FunctionalInterface
    private interface Call {
        /** Runs one execution; returns true when it was accepted and completed OK. */
        boolean run() throws Exception;
    }

    public static void main(String[] args) throws Exception {
        io.agentexec.node.AsyncStages.onTheCommonPool(); // the nodes here run as bin/agentexec serve's do
        int seconds = args.length > 0 ? Integer.parseInt(args[0]) : 30;
        int slots = args.length > 1 ? Integer.parseInt(args[1]) : 4;
        int queue = args.length > 2 ? Integer.parseInt(args[2]) : 8;
        Path data = Files.createTempDirectory("agentexec-cluster-bench");
        String overrides = String.format(Locale.ROOT, """
                agentexec.cluster.worker.slots = %d
                agentexec.cluster.worker.queue = %d
                agentexec.cluster.persistence.url = "%s"
                pekko.remote.artery.canonical.port = 0
                pekko.loglevel = WARNING
                """, slots, queue, Journals.localH2Url(data.resolve("journal")));
        try (AgentexecCluster node = AgentexecCluster.start(ClusterConfig.load(overrides, List.of(Path.of("config/local.conf"))))) {
            SandboxEngine engine = node.engine().orElseThrow();
            Limits limits = engine.defaultLimits();
            ExecutionRequest request = ExecutionRequest.of("python", "print(sum(range(1000)))", limits);
            waitForWorker(node);

            Call bare = () -> engine.execute(request).verdict() == Verdict.OK;
            Call clustered = () -> {
                ExecutionOutcome reply = node.execute(Optional.empty(), request, "bench-" + UUID.randomUUID())
                        .toCompletableFuture().get(5, TimeUnit.MINUTES);
                if (reply instanceof ExecutionOutcome.Completed c) {
                    ExecutionResult r = c.result();
                    return r.verdict() == Verdict.OK;
                }
                return false;
            };

            run(bare, slots, Math.max(5, seconds / 5)); // warm-up: images cached, JIT, pool
            run(clustered, slots + queue, Math.max(5, seconds / 5));
            Phase engineAlone = run(bare, slots, seconds);
            Phase throughCluster = run(clustered, slots + queue, seconds);
            Phase overload = run(clustered, 2 * (slots + queue), seconds);

            double ratio = throughCluster.perSecond() / engineAlone.perSecond();
            List<String> lines = new ArrayList<>();
            lines.add("## Cluster: throughput at saturation and latency under overload");
            lines.add("");
            lines.add(BenchmarkReport.machineLine());
            lines.add(String.format(Locale.ROOT,
                    "One node (gateway + worker, H2 journal), Docker backend, %d slots, queue %d; each execution is "
                            + "`print(sum(range(1000)))` in a fresh container; %d s per phase. `bench/run.sh cluster %d %d %d`.",
                    slots, queue, seconds, seconds, slots, queue));
            lines.add("");
            lines.add("| phase | callers | completed | refused (overloaded) | executions/s | p50 ms | p99 ms |");
            lines.add("|---|---:|---:|---:|---:|---:|---:|");
            lines.add(row("bare engine (`engine.execute`)", slots, engineAlone));
            lines.add(row("through the cluster, saturated", slots + queue, throughCluster));
            lines.add(row("through the cluster, 2 × overload", 2 * (slots + queue), overload));
            lines.add("");
            lines.add(String.format(Locale.ROOT, "Cluster / bare engine throughput: **%.2f ×** (target ≥ 0.85 ×). "
                    + "p99 latency of accepted executions under 2 × overload: **%.0f ms** (refused ones are answered at once "
                    + "and not counted).", ratio, percentile(overload.latenciesMs(), 99)));
            BenchmarkReport.writeSection(Path.of("docs/benchmarks.md"), "cluster", lines);
            lines.forEach(System.out::println);
        }
    }

    private static String row(String name, int callers, Phase phase) {
        return String.format(Locale.ROOT, "| %s | %d | %d | %d | %.2f | %.0f | %.0f |", name, callers, phase.completed(),
                phase.refused(), phase.perSecond(), percentile(phase.latenciesMs(), 50), percentile(phase.latenciesMs(), 99));
    }

    private static double percentile(double[] samples, double p) {
        return samples.length == 0 ? Double.NaN : BenchmarkReport.percentile(samples, p);
    }

    /** Closed loop: each caller runs one execution after another until the phase ends. */
    private static Phase run(Call call, int callers, int seconds) throws InterruptedException {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        AtomicInteger completed = new AtomicInteger();
        AtomicInteger refused = new AtomicInteger();
        ConcurrentLinkedQueue<Double> latencies = new ConcurrentLinkedQueue<>();
        AtomicLong lastFinish = new AtomicLong(System.nanoTime());
        CountDownLatch done = new CountDownLatch(callers);
        long start = System.nanoTime();
        for (int i = 0; i < callers; i++) {
            Thread t = new Thread(() -> {
                try {
                    while (System.nanoTime() < end) {
                        long t0 = System.nanoTime();
                        boolean ok = call.run();
                        long t1 = System.nanoTime();
                        if (ok) {
                            completed.incrementAndGet();
                            latencies.add((t1 - t0) / 1e6);
                            lastFinish.accumulateAndGet(t1, Math::max);
                        } else {
                            refused.incrementAndGet();
                            // a refused caller backs off briefly, as a client told "overloaded" would
                            Thread.sleep(20);
                        }
                    }
                } catch (Exception e) {
                    System.err.println("caller failed: " + e);
                } finally {
                    done.countDown();
                }
            });
            t.setDaemon(true);
            t.start();
        }
        done.await();
        double elapsed = (lastFinish.get() - start) / 1e9;
        return new Phase(completed.get(), refused.get(), elapsed,
                latencies.stream().mapToDouble(Double::doubleValue).toArray());
    }

    private static void waitForWorker(AgentexecCluster node) throws Exception {
        for (int i = 0; i < 300; i++) {
            if (!node.workers().toCompletableFuture().get(10, TimeUnit.SECONDS).isEmpty()) {
                return;
            }
            Thread.sleep(100);
        }
        throw new IllegalStateException("no worker registered");
    }
}
