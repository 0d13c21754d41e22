package io.agentexec.cluster.executors;

import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.NodeRole;
import io.agentexec.cluster.api.TenantScope;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.Done;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;

/** Statistics across the cluster: one {@link ExecutorStatsEntity} per tenant, on the gateway role, in the journal. */
public final class ClusterExecutorStats implements ExecutorStats {
    static final String STATS = "stats";
    private final ClusterSharding sharding;
    private final Duration askTimeout;

    private ClusterExecutorStats(ClusterSharding sharding, Duration askTimeout) {
        this.sharding = sharding;
        this.askTimeout = askTimeout;
    }

    public static ClusterExecutorStats start(AgentexecCluster cluster, ExecutorSettings settings) {
        ClusterSharding sharding = cluster.sharding();
        sharding.init(Entity.of(ExecutorStatsEntity.TYPE_KEY, ctx -> ExecutorStatsEntity.create(ctx.getEntityId(),
                        settings.statsSamples(), settings.snapshotEvery()))
                .withRole(NodeRole.GATEWAY.roleName()));
        return new ClusterExecutorStats(sharding, settings.askTimeout());
    }

    static String entityId(Optional<String> tenant) {
        return tenant.map(t -> TenantScope.scoped(t, STATS)).orElse(STATS);
    }

    private EntityRef<ExecutorStatsEntity.Command> entity(Optional<String> tenant) {
        return sharding.entityRefFor(ExecutorStatsEntity.TYPE_KEY, entityId(tenant));
    }

    @Override
    public CompletionStage<Void> record(Optional<String> tenant, StatsSample sample) {
        return entity(tenant).<Done>ask(r -> new ExecutorStatsEntity.Record(sample, r), askTimeout).thenApply(d -> null);
    }

    @Override
    public CompletionStage<StatsReport> report(Optional<String> tenant, Optional<String> executor) {
        return entity(tenant).ask(r -> new ExecutorStatsEntity.Get(executor, r), askTimeout);
    }
}
