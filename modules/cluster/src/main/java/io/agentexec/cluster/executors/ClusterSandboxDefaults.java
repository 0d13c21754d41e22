package io.agentexec.cluster.executors;

import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.NodeRole;
import io.agentexec.cluster.api.TenantScope;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.Done;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;

/**
 * Sandbox defaults across the cluster: one {@link SandboxDefaultsEntity} per tenant and sandbox, on the gateway role,
 * in the journal. Defaults never change once kept, so this node remembers what it kept or read (bounded, least
 * recently used dropped first): a sandbox's runs after the first through this node ask no entity.
 */
public final class ClusterSandboxDefaults implements SandboxDefaults {
    private final ClusterSharding sharding;
    private final Duration askTimeout;
    private final Map<String, ExecutorOptions> known;

    private ClusterSandboxDefaults(ClusterSharding sharding, Duration askTimeout, int remembered) {
        this.sharding = sharding;
        this.askTimeout = askTimeout;
        this.known = new Lru<>(remembered);
    }

    /** Starts the entities on this node (a proxy where it lacks the gateway role). */
    public static ClusterSandboxDefaults start(AgentexecCluster cluster, Duration askTimeout, int remembered) {
        ClusterSharding sharding = cluster.sharding();
        sharding.init(Entity.of(SandboxDefaultsEntity.TYPE_KEY, ctx -> SandboxDefaultsEntity.create(ctx.getEntityId()))
                .withRole(NodeRole.GATEWAY.roleName()));
        return new ClusterSandboxDefaults(sharding, askTimeout, remembered);
    }

    private static String entityId(Optional<String> tenant, String sandboxId) {
        return tenant.map(t -> TenantScope.scoped(t, sandboxId)).orElse(sandboxId);
    }

    private EntityRef<SandboxDefaultsEntity.Command> entry(String id) {
        return sharding.entityRefFor(SandboxDefaultsEntity.TYPE_KEY, id);
    }

    @Override
    public CompletionStage<Void> keep(Optional<String> tenant, String sandboxId, ExecutorOptions options) {
        String id = entityId(tenant, sandboxId);
        if (options.isEmpty()) {
            remember(id, options); // nothing to store: runs through this node need not ask
            return CompletableFuture.completedFuture(null);
        }
        return entry(id).<Done>ask(r -> new SandboxDefaultsEntity.Keep(options, r), askTimeout)
                .thenAccept(done -> remember(id, options));
    }

    @Override
    public CompletionStage<ExecutorOptions> of(Optional<String> tenant, String sandboxId) {
        String id = entityId(tenant, sandboxId);
        ExecutorOptions remembered;
        synchronized (known) {
            remembered = known.get(id);
        }
        if (remembered != null) {
            return CompletableFuture.completedFuture(remembered);
        }
        return entry(id).<SandboxDefaultsEntity.Answer>ask(SandboxDefaultsEntity.Get::new, askTimeout)
                .thenApply(answer -> {
                    ExecutorOptions options = answer.options().orElse(ExecutorOptions.none());
                    remember(id, options);
                    return options;
                });
    }

    private void remember(String id, ExecutorOptions options) {
        synchronized (known) {
            known.put(id, options);
        }
    }
}
