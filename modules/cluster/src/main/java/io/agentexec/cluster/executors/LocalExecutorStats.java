package io.agentexec.cluster.executors;

import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/** Statistics in this JVM's memory, the last {@code maxSamples} runs per tenant: for a node without a cluster. */
public final class LocalExecutorStats implements ExecutorStats {
    private final int maxSamples;
    private final Map<String, Deque<StatsSample>> byTenant = new HashMap<>();

    public LocalExecutorStats(int maxSamples) {
        this.maxSamples = maxSamples;
    }

    @Override
    public synchronized CompletionStage<Void> record(Optional<String> tenant, StatsSample sample) {
        Deque<StatsSample> samples = byTenant.computeIfAbsent(tenant.orElse(""), t -> new ArrayDeque<>());
        samples.addLast(sample);
        while (samples.size() > maxSamples) {
            samples.removeFirst();
        }
        return CompletableFuture.completedFuture(null);
    }

    @Override
    public synchronized CompletionStage<StatsReport> report(Optional<String> tenant, Optional<String> executor) {
        List<StatsSample> samples = List.copyOf(byTenant.getOrDefault(tenant.orElse(""), new ArrayDeque<>()));
        return CompletableFuture.completedFuture(executor.map(e -> StatsReport.ofExecutor(samples, e))
                .orElseGet(() -> StatsReport.of(samples)));
    }
}
