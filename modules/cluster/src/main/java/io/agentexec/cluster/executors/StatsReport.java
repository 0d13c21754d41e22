package io.agentexec.cluster.executors;

import io.agentexec.cluster.CborSerializable;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * The seed's {@code execution_stats}, summarised for one tenant: overall, by executor (agent) name and by profile.
 *
 * @param samples how many runs the summaries are over (the most recent ones kept)
 */
public record StatsReport(long samples, Summary overall, Map<String, Summary> byExecutor, Map<String, Summary> byProfile)
        implements CborSerializable {

    /**
     * @param successRate        successes / count (0 when count is 0)
     * @param p50Ms              median wall time, nearest rank (cached answers excluded: nothing ran)
     * @param timeouts           runs that ended TIMEOUT
     * @param memoryLimitsBytes  the memory limits the runs had (distinct, ascending)
     * @param cpuLimits          the CPU limits (distinct, ascending)
     * @param timeoutLimitsMs    the timeout limits (distinct, ascending)
     */
    public record Summary(long count, long successes, double successRate, long p50Ms, long p95Ms, long timeouts,
                          long cached, List<Long> memoryLimitsBytes, List<Double> cpuLimits, List<Long> timeoutLimitsMs)
            implements CborSerializable {
        public Summary {
            memoryLimitsBytes = List.copyOf(memoryLimitsBytes);
            cpuLimits = List.copyOf(cpuLimits);
            timeoutLimitsMs = List.copyOf(timeoutLimitsMs);
        }

        public static Summary of(Collection<StatsSample> samples) {
            long count = samples.size();
            long ok = samples.stream().filter(StatsSample::success).count();
            long cached = samples.stream().filter(StatsSample::cached).count();
            long timeouts = samples.stream().filter(StatsSample::timedOut).count();
            long[] times = samples.stream().filter(s -> !s.cached()).mapToLong(StatsSample::wallTimeMs).sorted().toArray();
            return new Summary(count, ok, count == 0 ? 0 : (double) ok / count, percentile(times, 50),
                    percentile(times, 95), timeouts, cached,
                    List.copyOf(samples.stream().map(StatsSample::memoryLimitBytes).collect(Collectors.toCollection(TreeSet::new))),
                    List.copyOf(samples.stream().map(StatsSample::cpuLimit).collect(Collectors.toCollection(TreeSet::new))),
                    List.copyOf(samples.stream().map(StatsSample::timeoutMs).collect(Collectors.toCollection(TreeSet::new))));
        }

        /** Nearest-rank percentile; 0 with no samples. */
        static long percentile(long[] sorted, int p) {
            if (sorted.length == 0) {
                return 0;
            }
            int rank = (int) Math.ceil(p / 100.0 * sorted.length);
            return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
        }
    }

    public StatsReport {
        Objects.requireNonNull(overall, "overall");
        byExecutor = Map.copyOf(byExecutor);
        byProfile = Map.copyOf(byProfile);
    }

    public static StatsReport of(Collection<StatsSample> samples) {
        return new StatsReport(samples.size(), Summary.of(samples), grouped(samples, StatsSample::executor),
                grouped(samples, StatsSample::profile));
    }

    private static Map<String, Summary> grouped(Collection<StatsSample> samples, Function<StatsSample, String> key) {
        Map<String, Summary> out = new TreeMap<>();
        samples.stream().collect(Collectors.groupingBy(key)).forEach((k, v) -> out.put(k, Summary.of(v)));
        return out;
    }

    /** The same report over one executor's samples only (an agent's own statistics). */
    public static StatsReport ofExecutor(Collection<StatsSample> samples, String executor) {
        return of(samples.stream().filter(s -> s.executor().equals(executor)).toList());
    }
}
