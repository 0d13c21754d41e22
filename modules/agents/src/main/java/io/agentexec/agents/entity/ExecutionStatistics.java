package io.agentexec.agents.entity;

import io.agentexec.agents.AgentsSerializable;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * The seed's execution_stats, per agent: how many executions, how many succeeded, and wall time
 * percentiles, overall and by resource profile (the seed's complexity).
 */
public record ExecutionStatistics(String agent, Summary overall, Map<String, Summary> byProfile)
        implements AgentsSerializable {

    public record Summary(long count, long successes, double successRate, long p50Millis, long p95Millis, long cached)
            implements AgentsSerializable {
        static Summary of(List<AgentEntity.ExecutionSample> samples) {
            long count = samples.size();
            long ok = samples.stream().filter(AgentEntity.ExecutionSample::success).count();
            long cached = samples.stream().filter(AgentEntity.ExecutionSample::cached).count();
            long[] times = samples.stream().mapToLong(AgentEntity.ExecutionSample::wallTimeMs).sorted().toArray();
            return new Summary(count, ok, count == 0 ? 0 : (double) ok / count, percentile(times, 50),
                    percentile(times, 95), cached);
        }

        /** Nearest-rank percentile; 0 when there are no samples. */
        static long percentile(long[] sorted, int p) {
            if (sorted.length == 0) {
                return 0;
            }
            int rank = (int) Math.ceil(p / 100.0 * sorted.length);
            return sorted[Math.max(0, Math.min(sorted.length - 1, rank - 1))];
        }
    }

    public ExecutionStatistics {
        Objects.requireNonNull(agent, "agent");
        Objects.requireNonNull(overall, "overall");
        byProfile = Map.copyOf(byProfile);
    }
}
