package io.agentexec.cluster.port.quota;

import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.NodeRole;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.api.TenantScope;
import java.time.Duration;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;

/**
 * The live-sandbox quota across every node of the cluster: one {@link TenantSandboxes}
 * entity per tenant (sharded on the gateway role, its slots in the journal).
 */
public final class ClusterSandboxQuota implements SandboxQuota {
    private final ClusterSharding sharding;
    private final Duration askTimeout;

    private ClusterSandboxQuota(ClusterSharding sharding, Duration askTimeout) {
        this.sharding = sharding;
        this.askTimeout = askTimeout;
    }

    /**
     * Starts the tenants' entities on this node (a proxy where the node lacks the gateway role).
     *
     * @param reservationTimeout a slot whose sandbox does not exist this long after it was reserved is freed
     * @param snapshotEvery      events between snapshots of a tenant's slots
     */
    public static ClusterSandboxQuota start(AgentexecCluster cluster, Duration askTimeout, Duration reservationTimeout,
                                            int snapshotEvery) {
        ClusterSharding sharding = cluster.sharding();
        sharding.init(Entity.of(TenantSandboxes.TYPE_KEY, ctx -> TenantSandboxes.create(ctx.getEntityId(),
                        sandboxId -> cluster.sandbox(TenantScope.scoped(ctx.getEntityId(), sandboxId))
                                .thenApply(SandboxView::status),
                        reservationTimeout, snapshotEvery))
                .withRole(NodeRole.GATEWAY.roleName()));
        return new ClusterSandboxQuota(sharding, askTimeout);
    }

    private EntityRef<TenantSandboxes.Command> entity(String tenant) {
        return sharding.entityRefFor(TenantSandboxes.TYPE_KEY, tenant);
    }

    @Override
    public CompletionStage<Decision> reserve(String tenant, String sandboxId, int maxLive) {
        return entity(tenant).<TenantSandboxes.Decision>ask(replyTo -> new TenantSandboxes.Reserve(sandboxId, maxLive, replyTo),
                        askTimeout)
                .thenApply(d -> d instanceof TenantSandboxes.Granted ? new Granted(d.held()) : new Refused(d.held()));
    }

    @Override
    public CompletionStage<Void> release(String tenant, String sandboxId) {
        return entity(tenant).<org.apache.pekko.Done>ask(replyTo -> new TenantSandboxes.Release(sandboxId, replyTo), askTimeout)
                .thenApply(done -> null);
    }

    /** Counts a sandbox that holds a container again (see {@link TenantSandboxes.Readmit}); fire and forget. */
    @Override
    public void readmit(String tenant, String sandboxId) {
        entity(tenant).tell(new TenantSandboxes.Readmit(sandboxId));
    }

    /** The sandbox ids holding the tenant's slots now (for operators and tests). */
    public CompletionStage<java.util.List<String>> held(String tenant) {
        return entity(tenant).<TenantSandboxes.Held>ask(TenantSandboxes.GetHeld::new, askTimeout)
                .thenApply(TenantSandboxes.Held::sandboxIds);
    }
}
