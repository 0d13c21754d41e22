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

/** The cache across the cluster: one {@link CachedResultEntity} per tenant and key, on the gateway role, in the journal. */
public final class ClusterResultCache implements ResultCache {
    private final ClusterSharding sharding;
    private final Duration askTimeout;

    private ClusterResultCache(ClusterSharding sharding, Duration askTimeout) {
        this.sharding = sharding;
        this.askTimeout = askTimeout;
    }

    /** Starts the entities on this node (a proxy where it lacks the gateway role). */
    public static ClusterResultCache start(AgentexecCluster cluster, Duration askTimeout) {
        ClusterSharding sharding = cluster.sharding();
        sharding.init(Entity.of(CachedResultEntity.TYPE_KEY, ctx -> CachedResultEntity.create(ctx.getEntityId()))
                .withRole(NodeRole.GATEWAY.roleName()));
        return new ClusterResultCache(sharding, askTimeout);
    }

    /** {@code TENANT.KEY}, or the key alone for the node's own runs (a hex key holds no '.', so no tenant). */
    static String entityId(Optional<String> tenant, String key) {
        return tenant.map(t -> TenantScope.scoped(t, key)).orElse(key);
    }

    private EntityRef<CachedResultEntity.Command> entry(Optional<String> tenant, String key) {
        return sharding.entityRefFor(CachedResultEntity.TYPE_KEY, entityId(tenant, key));
    }

    @Override
    public CompletionStage<Optional<CachedRun>> lookup(Optional<String> tenant, String key) {
        return entry(tenant, key).<CachedResultEntity.Answer>ask(CachedResultEntity.Get::new, askTimeout)
                .thenApply(CachedResultEntity.Answer::run);
    }

    @Override
    public CompletionStage<Void> store(Optional<String> tenant, String key, CachedRun run) {
        return entry(tenant, key).<Done>ask(r -> new CachedResultEntity.Put(run, r), askTimeout).thenApply(d -> null);
    }
}
