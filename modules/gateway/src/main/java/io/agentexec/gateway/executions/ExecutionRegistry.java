package io.agentexec.gateway.executions;

import io.agentexec.cluster.port.ExecutionIds;
import io.agentexec.gateway.spi.TenantId;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The executions this gateway node started, so that their callers can read and follow them here
 * with a replay of their output (other nodes find them through the execution port's
 * {@link io.agentexec.cluster.port.ExecutionPort#lookup}). Looked up by tenant and id together: another
 * tenant's id is simply not found.
 */
public final class ExecutionRegistry {
    private record Key(TenantId tenant, String id) { }

    /**
     * Ended executions are swept out at most once per this fraction of the retention: a sweep reads every entry, and
     * one per registration (as before) made each request pay for all those kept (7% of a node's CPU at 30 runs/s,
     * growing with the registry). An entry outlives its retention by at most 1%.
     */
    private static final int SWEEPS_PER_RETENTION = 100;

    private final Map<Key, TrackedExecution> executions = new ConcurrentHashMap<>();
    private final Clock clock;
    private final Duration retention;
    private final long sweepEveryMillis;
    private final int replayChunks;
    private final AtomicLong lastSweepMillis = new AtomicLong(Long.MIN_VALUE);
    private final AtomicLong sweeps = new AtomicLong();

    public ExecutionRegistry(Clock clock, Duration retention, int replayChunks) {
        this.clock = clock;
        this.retention = retention;
        this.sweepEveryMillis = Math.max(1, retention.toMillis() / SWEEPS_PER_RETENTION);
        this.replayChunks = replayChunks;
    }

    public TrackedExecution register(TenantId tenant) {
        return register(tenant, Optional.empty());
    }

    /**
     * A new execution of the tenant's, in {@code sandboxId} when given: its id then names the sandbox
     * too ({@code exe-UUID.SANDBOX}), so that any gateway node finds the run in that sandbox's record.
     */
    public TrackedExecution register(TenantId tenant, Optional<String> sandboxId) {
        evictExpired();
        // milliseconds: what the id carries, so every node tells the same start time
        Instant now = clock.instant().truncatedTo(ChronoUnit.MILLIS);
        String id = ExecutionIds.newId(now, sandboxId);
        TrackedExecution tracked = new TrackedExecution(id, tenant, now, replayChunks);
        executions.put(new Key(tenant, id), tracked);
        return tracked;
    }

    /** A new execution id (as {@link #register(TenantId, Optional)} makes them), registered later under it. */
    public String newId(Optional<String> sandboxId) {
        return ExecutionIds.newId(clock.instant().truncatedTo(ChronoUnit.MILLIS), sandboxId);
    }

    /** A new execution of the tenant's under an id {@link #newId} made (a run the seed's executors make). */
    public TrackedExecution register(TenantId tenant, String id) {
        evictExpired();
        Instant startedAt = startedAt(id).orElseGet(() -> clock.instant().truncatedTo(ChronoUnit.MILLIS));
        TrackedExecution tracked = new TrackedExecution(id, tenant, startedAt, replayChunks);
        executions.put(new Key(tenant, id), tracked);
        return tracked;
    }

    /**
     * A tracker for an execution another node started, fed by the backend while this node's caller
     * follows it; not registered here (the backend remains where it is found).
     */
    public TrackedExecution follower(TenantId tenant, String id) {
        return new TrackedExecution(id, tenant, startedAt(id).orElse(clock.instant()), replayChunks);
    }

    public Optional<TrackedExecution> find(TenantId tenant, String id) {
        return Optional.ofNullable(executions.get(new Key(tenant, id)));
    }

    public long running() {
        return executions.values().stream().filter(e -> e.outcome().isEmpty()).count();
    }

    /** Removes the executions ended longer than the retention ago, unless a sweep ran within the sweep interval. */
    private void evictExpired() {
        Instant now = clock.instant();
        long last = lastSweepMillis.get();
        if (last != Long.MIN_VALUE && now.toEpochMilli() - last < sweepEveryMillis
                || !lastSweepMillis.compareAndSet(last, now.toEpochMilli())) {
            return; // swept recently, or another caller is sweeping now
        }
        sweeps.incrementAndGet();
        Instant cutoff = now.minus(retention);
        executions.values().removeIf(e -> e.endedAt().map(t -> t.isBefore(cutoff)).orElse(false));
    }

    /** How many sweeps ran (for tests: registrations do not each read the whole registry). */
    long sweeps() {
        return sweeps.get();
    }

    /** How many executions are kept here. */
    int size() {
        return executions.size();
    }

    /** The sandbox an execution id names (a run inside it), if any. */
    public static Optional<String> sandboxOf(String id) {
        return ExecutionIds.sandboxOf(id);
    }

    /** When the execution with this id started, if the id is one this gateway made. */
    public static Optional<Instant> startedAt(String id) {
        return ExecutionIds.startedAt(id);
    }
}
