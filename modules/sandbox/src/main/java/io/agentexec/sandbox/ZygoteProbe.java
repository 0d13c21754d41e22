package io.agentexec.sandbox;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;
import java.util.function.LongSupplier;

/**
 * What {@code agentexec.sandbox.zygote.enabled = auto} measures once, when the engine starts: whether a block forked
 * from a pre-initialised interpreter costs this machine less CPU than a plain start. It usually does (a fork skips the
 * interpreter's start-up), but not everywhere: the forked block's exit writes nearly every page it inherited
 * (reference counts, GC headers), each a copy-on-write fault, and on a machine where faults are dear (measured on a PVM
 * guest: 12-14 us each, a forked block 37 ms of CPU against 27 ms for a whole fresh interpreter) forks lose under load.
 * Which holds is the machine's, not the configuration's, so it is measured where the engine runs.
 *
 * <p>CPU, not latency, decides: one block at a time a fork answers sooner even where it costs more, but under load the
 * machine's CPU is the limit. The machine's whole busy time is read ({@code /proc/stat}), so the daemon's, the
 * agent's and the engine's shares count; where it cannot be read, the blocks' wall time decides. The machine is not
 * quiet when an engine starts (the JIT, the warm pool filling, other nodes starting), so each round's two phases,
 * run back to back, give one ratio, and the median of the rounds' ratios decides: a burst of other work during one
 * phase moves one round, not the verdict.
 */
final class ZygoteProbe {
    /** Where the machine's CPU time is read: one line, {@code cpu user nice system idle iowait irq softirq ...}. */
    private static final Path PROC_STAT = Path.of("/proc/stat");

    private ZygoteProbe() {
    }

    /** Runs {@code blocks} blocks, forked from a zygote or plainly started; returns how many ran in a fork. */
    interface Trial {
        int run(boolean zygote, int blocks);
    }

    /** The machine's busy CPU time so far, in clock ticks; empty where it cannot be read. */
    interface CpuClock {
        OptionalLong busyTicks();
    }

    /**
     * Both kinds' totals over every round, and each round's ratio of the forked phase's CPU to the started one's
     * (empty where the CPU could not be read); {@code forked}: how many of the zygote kind's blocks ran in a fork.
     */
    record Measurement(int blocks, int forked, long zygoteTicks, long plainTicks, long zygoteNanos, long plainNanos,
                       List<Double> roundRatios) {
        Measurement {
            roundRatios = List.copyOf(roundRatios);
        }
    }

    /** What the engine keeps, and the sentence the node logs and /readyz repeats. */
    record Verdict(boolean zygotes, String detail) {
    }

    /**
     * One unmeasured block of each kind (the zygote's first fork, the interpreter's files in the page cache), then
     * {@code rounds} rounds of {@code blocks} blocks of each kind, which kind first alternating by round.
     */
    static Measurement measure(Trial trial, CpuClock clock, LongSupplier nanoTime, ZygoteSettings.Probe probe) {
        trial.run(true, 1);
        trial.run(false, 1);
        long[] ticks = new long[2];
        long[] nanos = new long[2];
        int forked = 0;
        boolean cpuRead = true;
        List<Double> ratios = new ArrayList<>();
        for (int round = 0; round < probe.rounds(); round++) {
            long[] roundTicks = new long[2];
            for (boolean zygote : round % 2 == 0 ? List.of(true, false) : List.of(false, true)) {
                int kind = zygote ? 0 : 1;
                OptionalLong before = clock.busyTicks();
                long start = nanoTime.getAsLong();
                int ranForked = trial.run(zygote, probe.blocks());
                nanos[kind] += nanoTime.getAsLong() - start;
                OptionalLong after = clock.busyTicks();
                if (before.isPresent() && after.isPresent()) {
                    roundTicks[kind] = after.getAsLong() - before.getAsLong();
                    ticks[kind] += roundTicks[kind];
                } else {
                    cpuRead = false;
                }
                if (zygote) {
                    forked += ranForked;
                }
            }
            if (roundTicks[1] > 0) {
                ratios.add((double) roundTicks[0] / roundTicks[1]);
            }
        }
        return new Measurement(probe.blocks() * probe.rounds(), forked, ticks[0], ticks[1], nanos[0], nanos[1],
                cpuRead ? ratios : List.of());
    }

    /**
     * Zygotes, unless a forked block cost more than {@code 1 + margin} times a started one. Where the zygote kind's
     * blocks did not all fork (an image whose interpreter the zygote refuses), nothing was compared: zygotes stay on,
     * as harmless there as they were before (each block falls back to a plain start by itself).
     */
    static Verdict decide(Measurement m, double margin) {
        double wallZygote = m.zygoteNanos() / 1e6 / m.blocks();
        double wallPlain = m.plainNanos() / 1e6 / m.blocks();
        if (m.forked() < m.blocks()) {
            return new Verdict(true, String.format(Locale.ROOT, "zygotes (not compared: %d of the probe's %d blocks "
                    + "forked, the others fell back to plain starts)", m.forked(), m.blocks()));
        }
        boolean byCpu = !m.roundRatios().isEmpty();
        double ratio = byCpu ? median(m.roundRatios())
                : (m.plainNanos() > 0 ? (double) m.zygoteNanos() / m.plainNanos() : 1);
        boolean zygotes = ratio <= 1 + margin;
        String measure = byCpu
                ? String.format(Locale.ROOT, "the median of %d rounds of the machine's CPU; in all %d ticks for %d "
                        + "forked blocks, %d for as many plain starts", m.roundRatios().size(), m.zygoteTicks(),
                        m.blocks(), m.plainTicks())
                : "wall time (the machine's CPU could not be read)";
        return new Verdict(zygotes, String.format(Locale.ROOT, "%s (a forked block cost %.2fx a plain start, %s; wall "
                        + "%.1f vs %.1f ms a block; forks are kept up to %.2fx)", zygotes ? "zygotes" : "plain starts",
                ratio, measure, wallZygote, wallPlain, 1 + margin));
    }

    static double median(List<Double> values) {
        List<Double> sorted = values.stream().sorted().toList();
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }

    /** The machine's busy time from {@code /proc/stat}: user, nice, system, irq and softirq (guest time is in user). */
    static CpuClock procStat() {
        return () -> {
            try {
                return busyTicks(Files.readAllLines(PROC_STAT).get(0));
            } catch (IOException | UncheckedIOException | IndexOutOfBoundsException e) {
                return OptionalLong.empty();
            }
        };
    }

    static OptionalLong busyTicks(String cpuLine) {
        String[] f = cpuLine.trim().split("\\s+");
        if (f.length < 8 || !f[0].equals("cpu")) {
            return OptionalLong.empty();
        }
        try {
            long busy = 0;
            for (int i : new int[] {1, 2, 3, 6, 7}) {
                busy += Long.parseLong(f[i]);
            }
            return OptionalLong.of(busy);
        } catch (NumberFormatException e) {
            return OptionalLong.empty();
        }
    }
}
