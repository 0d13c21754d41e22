package io.agentexec.gateway.executions;

import io.agentexec.gateway.spi.TenantId;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The executions this gateway node started asynchronously, so that their callers can read and
 * follow them. Looked up by tenant and id together: another tenant's id is simply not found.
 */
public final class ExecutionRegistry {
    private record Key(TenantId tenant, String id) { }

    private final Map<Key, TrackedExecution> executions = new ConcurrentHashMap<>();
    private final Clock clock;
    private final Duration retention;
    private final int replayChunks;

    public ExecutionRegistry(Clock clock, Duration retention, int replayChunks) {
        this.clock = clock;
        this.retention = retention;
        this.replayChunks = replayChunks;
    }

    public TrackedExecution register(TenantId tenant) {
        evictExpired();
        String id = "exe-" + UUID.randomUUID();
        TrackedExecution tracked = new TrackedExecution(id, tenant, clock.instant(), replayChunks);
        executions.put(new Key(tenant, id), tracked);
        return tracked;
    }

    public Optional<TrackedExecution> find(TenantId tenant, String id) {
        return Optional.ofNullable(executions.get(new Key(tenant, id)));
    }

    public long running() {
        return executions.values().stream().filter(e -> e.outcome().isEmpty()).count();
    }

    private void evictExpired() {
        Instant cutoff = clock.instant().minus(retention);
        executions.values().removeIf(e -> e.endedAt().map(t -> t.isBefore(cutoff)).orElse(false));
    }
}
