package io.agentexec.cluster.executors;

import java.util.Optional;
import java.util.concurrent.CompletionStage;

/**
 * Where the tenants' {@code execution_stats} are kept: across the cluster in the journal ({@link ClusterExecutorStats})
 * or in this JVM's memory ({@link LocalExecutorStats}).
 */
public interface ExecutorStats {

    /** Counts one run of the tenant's (empty: the node's own). Bookkeeping: a failure to record never fails a run. */
    CompletionStage<Void> record(Optional<String> tenant, StatsSample sample);

    /** The tenant's statistics, optionally of one executor only. */
    CompletionStage<StatsReport> report(Optional<String> tenant, Optional<String> executor);
}
