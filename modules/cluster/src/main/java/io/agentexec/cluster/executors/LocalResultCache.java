package io.agentexec.cluster.executors;

import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/** The cache in this JVM's memory, bounded (oldest entries dropped first): for a node without a cluster. */
public final class LocalResultCache implements ResultCache {
    private final Map<String, CachedRun> entries;

    public LocalResultCache(int maxEntries) {
        this.entries = new Lru<>(maxEntries);
    }

    private static String id(Optional<String> tenant, String key) {
        return tenant.orElse("") + "/" + key;
    }

    @Override
    public synchronized CompletionStage<Optional<CachedRun>> lookup(Optional<String> tenant, String key) {
        return CompletableFuture.completedFuture(Optional.ofNullable(entries.get(id(tenant, key))));
    }

    @Override
    public synchronized CompletionStage<Void> store(Optional<String> tenant, String key, CachedRun run) {
        entries.put(id(tenant, key), run);
        return CompletableFuture.completedFuture(null);
    }
}
