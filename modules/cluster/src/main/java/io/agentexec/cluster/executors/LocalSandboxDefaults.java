package io.agentexec.cluster.executors;

import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/** Sandbox defaults in this JVM's memory, bounded (the least recently used dropped first): for a node without a cluster. */
public final class LocalSandboxDefaults implements SandboxDefaults {
    private final Map<String, ExecutorOptions> entries;

    public LocalSandboxDefaults(int maxEntries) {
        this.entries = new Lru<>(maxEntries);
    }

    private static String id(Optional<String> tenant, String sandboxId) {
        return tenant.orElse("") + "/" + sandboxId;
    }

    @Override
    public synchronized CompletionStage<Void> keep(Optional<String> tenant, String sandboxId, ExecutorOptions options) {
        if (!options.isEmpty()) {
            entries.put(id(tenant, sandboxId), options);
        }
        return CompletableFuture.completedFuture(null);
    }

    @Override
    public synchronized CompletionStage<ExecutorOptions> of(Optional<String> tenant, String sandboxId) {
        return CompletableFuture.completedFuture(entries.getOrDefault(id(tenant, sandboxId), ExecutorOptions.none()));
    }
}
