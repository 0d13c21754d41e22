package io.agentexec.bench;

import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.SandboxSession;
import io.agentexec.sandbox.model.BlockOutcome;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * Pre-initialised interpreters (zygotes): a warm sandbox's block of {@code print(1)} through the engine, forked from
 * the zygote against a plain start ({@code python3 -u FILE}), on Docker and on bwrap, all measured interleaved (one
 * call of each path per round) with a bare {@code python3 -c 'print(1)'} on the host; then throughput with N sandboxes
 * busy at once (Docker), phases of bare spawns, plain starts and zygote forks taking turns.
 *
 *   bench/run.sh zygote [ROUNDS] [SECONDS_PER_PHASE]
 */
public final class ZygoteBenchmark {
    private static final String HOST_PYTHON = "/usr/bin/python3";
    private static final int[] CONCURRENCY = {1, 2, 8};
    private static final int PHASE_ROUNDS = 3;

    /** One path: its samples (ms), and how many of its blocks ran in a zygote. */
    private static final class Series {
        final String name;
        final List<Double> samples = new ArrayList<>();
        final List<Long> peakMemory = new ArrayList<>();
        int zygoteBlocks;
        int blocks;

        Series(String name) {
            this.name = name;
        }

        double[] array() {
            return samples.stream().mapToDouble(Double::doubleValue).toArray();
        }
    }

    public static void main(String[] args) throws Exception {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 200;
        int phaseSeconds = args.length > 1 ? Integer.parseInt(args[1]) : 5;
        EngineSettings loaded = EngineSettings.load();
        // The zygote rows fork whatever this machine's probe would choose (zygote.enabled = auto is reported below).
        EngineSettings settings = loaded.withZygote(loaded.zygote().withEnabled(true));
        List<String> lines = new ArrayList<>();
        lines.add("## Pre-initialised interpreters (zygotes): a warm sandbox's `print(1)`");
        lines.add("");
        lines.add(BenchmarkReport.machineLine() + " `bench/run.sh zygote " + rounds + " " + phaseSeconds + "`; times in ms "
                + "measured from Java (the engine's `SandboxSession.execute`, or the host process for bare python3). "
                + "Plain: `python3 -u FILE` started by the agent (zygotes off); zygote: the block runs in a fork of the "
                + "sandbox's pre-initialised Python (every block after a session's first).");
        lines.add("");

        String loadBefore = loadAverage();
        try (SandboxEngine dockerZygote = SandboxEngine.start(settings.withBackend(BackendChoice.DOCKER));
             SandboxEngine dockerPlain = SandboxEngine.start(plain(settings.withBackend(BackendChoice.DOCKER)));
             SandboxEngine bwrapZygote = SandboxEngine.start(settings.withBackend(BackendChoice.BWRAP));
             SandboxEngine bwrapPlain = SandboxEngine.start(plain(settings.withBackend(BackendChoice.BWRAP)))) {
            latency(rounds, lines, dockerZygote, dockerPlain, bwrapZygote, bwrapPlain);
            throughput(phaseSeconds, lines, dockerZygote, dockerPlain);
        }
        lines.add("");
        lines.add("What `agentexec.sandbox.zygote.enabled = auto` chose on this machine (Docker): " + autoChoice(settings) + ".");
        lines.add("");
        lines.add("Load average (1, 5, 15 min) at the start: " + loadBefore + "; at the end: " + loadAverage()
                + ". Other work shares the machine: compare rows of one run, which were measured interleaved.");
        lines.forEach(System.out::println);
        BenchmarkReport.writeSection(Path.of("docs/benchmarks.md"), "zygote", lines);
    }

    /** An engine with zygote.enabled = auto, its probe's verdict once it has measured. */
    private static String autoChoice(EngineSettings settings) throws InterruptedException {
        try (SandboxEngine auto = SandboxEngine.start(settings.withBackend(BackendChoice.DOCKER)
                .withZygote(settings.zygote().withAuto()))) {
            long deadline = System.nanoTime() + java.time.Duration.ofMinutes(2).toNanos();
            while (auto.startPath().contains("until the probe") && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            return auto.startPath();
        }
    }

    private static EngineSettings plain(EngineSettings s) {
        return s.withZygote(s.zygote().withEnabled(false));
    }

    private static void latency(int rounds, List<String> lines, SandboxEngine dockerZygote, SandboxEngine dockerPlain,
                                SandboxEngine bwrapZygote, SandboxEngine bwrapPlain) throws Exception {
        Series bare = new Series("bare `python3 -c 'print(1)'` on the host");
        Map<Series, SandboxSession> sessions = new LinkedHashMap<>();
        Map<Series, Limits> limits = new LinkedHashMap<>();
        List<Series> paths = new ArrayList<>(List.of(bare));
        for (Object[] e : new Object[][] {{"Docker", dockerPlain, dockerZygote}, {"bwrap", bwrapPlain, bwrapZygote}}) {
            for (int i = 1; i <= 2; i++) {
                SandboxEngine engine = (SandboxEngine) e[i];
                Series p = new Series("engine, " + e[0] + ", warm session, " + (i == 1 ? "plain start" : "**zygote**"));
                sessions.put(p, engine.openSession("python", engine.defaultLimits()));
                limits.put(p, engine.defaultLimits());
                paths.add(p);
            }
        }
        try {
            int warmUp = Math.max(5, rounds / 10);
            for (int r = -warmUp; r < rounds; r++) {
                for (Series p : paths) {
                    long t = System.nanoTime();
                    if (p == bare) {
                        process(HOST_PYTHON, "-c", "print(1)");
                    } else {
                        ExecutionResult result = sessions.get(p).execute(ExecutionRequest.of("python", "print(1)", limits.get(p)));
                        check(result);
                        if (r >= 0) {
                            p.blocks++;
                            p.zygoteBlocks += BlockOutcome.ZYGOTE.equals(result.blocks().get(0).start()) ? 1 : 0;
                            result.peakMemoryBytes().ifPresent(p.peakMemory::add);
                        }
                    }
                    if (r >= 0) {
                        p.samples.add((System.nanoTime() - t) / 1e6);
                    }
                }
            }
        } finally {
            sessions.values().forEach(SandboxSession::close);
        }
        double bareP50 = BenchmarkReport.percentile(bare.array(), 50);
        lines.add("### Latency, one block at a time, interleaved");
        lines.add("");
        lines.add("| path | runs | in a zygote | p50 | p95 | p50 / bare python3 | peak RSS (MiB, p50) |");
        lines.add("|---|---:|---:|---:|---:|---:|---:|");
        for (Series p : paths) {
            double p50 = BenchmarkReport.percentile(p.array(), 50);
            double rss = p.peakMemory.isEmpty() ? Double.NaN : BenchmarkReport.percentile(
                    p.peakMemory.stream().mapToDouble(b -> b / 1048576.0).toArray(), 50);
            lines.add(String.format(Locale.ROOT, "| %s | %d | %s | %.1f | %.1f | %.2f× | %s |", p.name, p.samples.size(),
                    p == bare ? "" : p.zygoteBlocks + "/" + p.blocks, p50, BenchmarkReport.percentile(p.array(), 95),
                    p50 / bareP50, Double.isNaN(rss) ? "" : String.format(Locale.ROOT, "%.1f", rss)));
        }
        for (String backend : List.of("Docker", "bwrap")) {
            Series plain = paths.stream().filter(p -> p.name.contains(backend) && p.name.contains("plain")).findFirst().orElseThrow();
            Series zygote = paths.stream().filter(p -> p.name.contains(backend) && p.name.contains("zygote")).findFirst().orElseThrow();
            double a = BenchmarkReport.percentile(plain.array(), 50);
            double b = BenchmarkReport.percentile(zygote.array(), 50);
            lines.add("");
            lines.add(String.format(Locale.ROOT, "%s: zygote %.1f ms vs plain start %.1f ms at p50 = **%.2f×** (%.1f ms less per block).",
                    backend, b, a, b / a, a - b));
        }
        lines.add("");
    }

    /** N callers, each with its own sandbox, for a phase; the phases of each path take turns. */
    private static void throughput(int seconds, List<String> lines, SandboxEngine zygoteEngine, SandboxEngine plainEngine)
            throws Exception {
        lines.add("### Throughput, Docker, N sandboxes busy at once (phases of " + seconds + " s, " + PHASE_ROUNDS
                + " of each, taking turns)");
        lines.add("");
        lines.add("| concurrency | path | blocks | blocks/s | p50 | p99 | blocks/s / bare spawns |");
        lines.add("|---:|---|---:|---:|---:|---:|---:|");
        for (int c : CONCURRENCY) {
            List<SandboxSession> zygoteSessions = new ArrayList<>();
            List<SandboxSession> plainSessions = new ArrayList<>();
            ExecutorService pool = Executors.newFixedThreadPool(c);
            try {
                for (int i = 0; i < c; i++) {
                    zygoteSessions.add(zygoteEngine.openSession("python", zygoteEngine.defaultLimits()));
                    plainSessions.add(plainEngine.openSession("python", plainEngine.defaultLimits()));
                }
                for (SandboxSession s : zygoteSessions) {
                    check(s.execute(ExecutionRequest.of("python", "print(1)", zygoteEngine.defaultLimits())));
                }
                Map<String, List<Double>> samples = new LinkedHashMap<>();
                Map<String, Double> busySeconds = new LinkedHashMap<>();
                for (String name : List.of("bare python3 spawns", "plain start", "**zygote**")) {
                    samples.put(name, new ArrayList<>());
                    busySeconds.put(name, 0.0);
                }
                for (int round = 0; round < PHASE_ROUNDS; round++) {
                    for (String name : samples.keySet()) {
                        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
                        long start = System.nanoTime();
                        List<Future<List<Double>>> callers = new ArrayList<>();
                        for (int i = 0; i < c; i++) {
                            SandboxSession session = name.startsWith("plain") ? plainSessions.get(i)
                                    : name.contains("zygote") ? zygoteSessions.get(i) : null;
                            Limits limits = zygoteEngine.defaultLimits();
                            callers.add(pool.submit(() -> {
                                List<Double> mine = new ArrayList<>();
                                while (System.nanoTime() < deadline) {
                                    long t = System.nanoTime();
                                    if (session == null) {
                                        process(HOST_PYTHON, "-c", "print(1)");
                                    } else {
                                        check(session.execute(ExecutionRequest.of("python", "print(1)", limits)));
                                    }
                                    mine.add((System.nanoTime() - t) / 1e6);
                                }
                                return mine;
                            }));
                        }
                        for (Future<List<Double>> f : callers) {
                            samples.get(name).addAll(f.get());
                        }
                        busySeconds.merge(name, (System.nanoTime() - start) / 1e9, Double::sum);
                    }
                }
                double bareRate = samples.get("bare python3 spawns").size() / busySeconds.get("bare python3 spawns");
                for (Map.Entry<String, List<Double>> e : samples.entrySet()) {
                    double[] s = e.getValue().stream().mapToDouble(Double::doubleValue).toArray();
                    double rate = s.length / busySeconds.get(e.getKey());
                    lines.add(String.format(Locale.ROOT, "| %d | %s | %d | %.1f | %.1f | %.1f | %.2f× |", c, e.getKey(), s.length,
                            rate, BenchmarkReport.percentile(s, 50), BenchmarkReport.percentile(s, 99), rate / bareRate));
                }
            } finally {
                pool.shutdownNow();
                zygoteSessions.forEach(SandboxSession::close);
                plainSessions.forEach(SandboxSession::close);
            }
        }
        lines.add("");
        lines.add("Why a fork is not free: the block's process shares the zygote's memory copy-on-write, and CPython "
                + "writes to most objects it touches (reference counts, the collector's headers), so the block and the "
                + "interpreter's finalisation at its end need their own copies of the zygote's pages; the fork makes "
                + "them before its block comes (MADV_POPULATE_WRITE), in one call per run of pages rather than a fault "
                + "per page, which a block sent the moment the last one ended waits for (the throughput rows at 1). The "
                + "zygote saves the start-up itself: reading and unmarshalling the standard library, `site`, the encodings.");
    }

    private static String loadAverage() {
        try {
            String[] f = java.nio.file.Files.readString(Path.of("/proc/loadavg")).split(" ");
            return f[0] + ", " + f[1] + ", " + f[2];
        } catch (IOException e) {
            return "unknown";
        }
    }

    private static void check(ExecutionResult r) {
        if (r.verdict() != Verdict.OK || !r.stdout().equals("1\n")) {
            throw new IllegalStateException("unexpected result: " + r);
        }
    }

    private static void process(String... command) {
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            if (p.waitFor() != 0) {
                throw new IllegalStateException(String.join(" ", command) + " exited " + p.exitValue());
            }
        } catch (IOException e) {
            throw new IllegalStateException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private ZygoteBenchmark() {
    }
}
