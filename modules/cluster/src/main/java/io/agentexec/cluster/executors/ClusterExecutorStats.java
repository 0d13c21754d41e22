package io.agentexec.cluster.executors;

import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.NodeRole;
import io.agentexec.cluster.api.TenantScope;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.pekko.Done;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.Scheduler;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.concurrent.ExecutionContextExecutor;

/** Statistics across the cluster: one {@link ExecutorStatsEntity} per tenant, on the gateway role, in the journal. */
public final class ClusterExecutorStats implements ExecutorStats {
    private static final Logger log = LoggerFactory.getLogger(ClusterExecutorStats.class);
    static final String STATS = "stats";
    private final ClusterSharding sharding;
    private final Duration askTimeout;
    private final Duration flushInterval;
    private final Scheduler scheduler;
    private final ExecutionContextExecutor executor;
    /** Samples recorded here since the last flush, per tenant (empty: the node's own runs). */
    private final Map<Optional<String>, ConcurrentLinkedQueue<StatsSample>> pending = new ConcurrentHashMap<>();
    private final AtomicBoolean flushScheduled = new AtomicBoolean();

    private ClusterExecutorStats(ClusterSharding sharding, Duration askTimeout, Duration flushInterval,
                                 Scheduler scheduler, ExecutionContextExecutor executor) {
        this.sharding = sharding;
        this.askTimeout = askTimeout;
        this.flushInterval = flushInterval;
        this.scheduler = scheduler;
        this.executor = executor;
    }

    public static ClusterExecutorStats start(AgentexecCluster cluster, ExecutorSettings settings) {
        ClusterSharding sharding = cluster.sharding();
        sharding.init(Entity.of(ExecutorStatsEntity.TYPE_KEY, ctx -> ExecutorStatsEntity.create(ctx.getEntityId(),
                        settings.statsSamples(), settings.snapshotEvery()))
                .withRole(NodeRole.GATEWAY.roleName()));
        ClusterExecutorStats stats = new ClusterExecutorStats(sharding, settings.askTimeout(), settings.statsFlush(),
                cluster.system().scheduler(), cluster.system().executionContext());
        // What was gathered is recorded before the node leaves (its shards are still here to take it).
        CoordinatedShutdown.get(cluster.system()).addTask(CoordinatedShutdown.PhaseBeforeClusterShutdown(),
                "flush-executor-stats-" + System.identityHashCode(stats), () -> stats.flush().thenApply(v -> Done.getInstance()));
        return stats;
    }

    static String entityId(Optional<String> tenant) {
        return tenant.map(t -> TenantScope.scoped(t, STATS)).orElse(STATS);
    }

    private EntityRef<ExecutorStatsEntity.Command> entity(Optional<String> tenant) {
        return sharding.entityRefFor(ExecutorStatsEntity.TYPE_KEY, entityId(tenant));
    }

    /**
     * Gathers the sample; this node records what it gathered once per flush interval, one event per tenant. Done at
     * once: statistics are bookkeeping, and no run waits for them.
     */
    @Override
    public CompletionStage<Void> record(Optional<String> tenant, StatsSample sample) {
        pending.computeIfAbsent(tenant, t -> new ConcurrentLinkedQueue<>()).add(sample);
        if (flushScheduled.compareAndSet(false, true)) {
            scheduler.scheduleOnce(flushInterval, () -> flush(), executor);
        }
        return CompletableFuture.completedFuture(null);
    }

    /** Records what was gathered, one event per tenant; completes when every tenant's entity has it (or refused it). */
    private CompletionStage<Void> flush() {
        flushScheduled.set(false); // a sample added from now on schedules the next flush
        List<CompletableFuture<Void>> recorded = new ArrayList<>();
        pending.keySet().forEach(tenant -> recorded.add(flush(tenant).toCompletableFuture()));
        return CompletableFuture.allOf(recorded.toArray(CompletableFuture[]::new));
    }

    /** Records the tenant's gathered samples (nothing to do when there are none). */
    private CompletionStage<Void> flush(Optional<String> tenant) {
        ConcurrentLinkedQueue<StatsSample> queue = pending.get(tenant);
        List<StatsSample> samples = new ArrayList<>();
        for (StatsSample s = queue == null ? null : queue.poll(); s != null; s = queue.poll()) {
            samples.add(s);
        }
        if (samples.isEmpty()) {
            return CompletableFuture.completedFuture(null);
        }
        return entity(tenant).<Done>ask(r -> new ExecutorStatsEntity.RecordAll(samples, r), askTimeout)
                .handle((done, error) -> {
                    if (error != null) {
                        log.warn("{} run statistics of {} not recorded: {}", samples.size(),
                                tenant.orElse("this node"), error.toString());
                    }
                    return null;
                });
    }

    /**
     * The tenant's statistics, this node's gathered samples included: they are sent first, and the entity takes them
     * before it answers (one sender's messages keep their order), so a caller reads its own runs.
     */
    @Override
    public CompletionStage<StatsReport> report(Optional<String> tenant, Optional<String> executor) {
        flush(tenant);
        return entity(tenant).ask(r -> new ExecutorStatsEntity.Get(executor, r), askTimeout);
    }
}
