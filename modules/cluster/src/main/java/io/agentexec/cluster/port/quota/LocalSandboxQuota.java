package io.agentexec.cluster.port.quota;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The live-sandbox quota of a gateway that is the only node (the engine backend): slots in this JVM's
 * memory, which is where its sandboxes live too, so both go together.
 */
public final class LocalSandboxQuota implements SandboxQuota {
    private final Map<String, Set<String>> slots = new ConcurrentHashMap<>();

    @Override
    public CompletionStage<Decision> reserve(String tenant, String sandboxId, int maxLive) {
        Set<String> held = slots.computeIfAbsent(tenant, t -> ConcurrentHashMap.newKeySet());
        synchronized (held) {
            if (held.contains(sandboxId)) {
                return CompletableFuture.completedFuture(new Granted(held.size()));
            }
            if (held.size() >= maxLive) {
                return CompletableFuture.completedFuture(new Refused(held.size()));
            }
            held.add(sandboxId);
            return CompletableFuture.completedFuture(new Granted(held.size()));
        }
    }

    @Override
    public CompletionStage<Void> release(String tenant, String sandboxId) {
        Set<String> held = slots.get(tenant);
        if (held != null) {
            synchronized (held) {
                held.remove(sandboxId);
            }
        }
        return CompletableFuture.completedFuture(null);
    }
}
