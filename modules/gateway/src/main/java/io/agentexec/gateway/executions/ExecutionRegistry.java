package io.agentexec.gateway.executions;

import io.agentexec.gateway.spi.TenantId;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The executions this gateway node started, so that their callers can read and follow them here
 * with a replay of their output (other nodes find them through the backend's
 * {@link io.agentexec.gateway.spi.ExecutionDirectory}). Looked up by tenant and id together: another
 * tenant's id is simply not found.
 */
public final class ExecutionRegistry {
    private static final String ID_PREFIX = "exe-";
    private static final int UUID_VERSION_TIME_ORDERED = 7;
    /** "exe-" and a UUID's 36 characters: what every id begins with. */
    private static final int BASE_ID_LENGTH = ID_PREFIX.length() + 36;
    private static final char SANDBOX_SEPARATOR = '.';
    /**
     * The longest sandbox id an execution id names: the cluster key {@code TENANT:ID} stays within the
     * cluster's 200 characters for any tenant (64). The gateway's own sandbox ids are 40 characters;
     * a longer one names no sandbox (the run is refused as not found) and its id is the plain one.
     */
    private static final int MAX_SANDBOX_IN_ID = 200 - 64 - 1 - BASE_ID_LENGTH - 1;

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
        String id = newId(now) + sandboxId.filter(s -> s.length() <= MAX_SANDBOX_IN_ID).map(s -> SANDBOX_SEPARATOR + s)
                .orElse("");
        TrackedExecution tracked = new TrackedExecution(id, tenant, now, replayChunks);
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

    private void evictExpired() {
        Instant cutoff = clock.instant().minus(retention);
        executions.values().removeIf(e -> e.endedAt().map(t -> t.isBefore(cutoff)).orElse(false));
    }

    /**
     * "exe-" and a time-ordered UUID (RFC 9562 version 7): its first 48 bits are the start in Unix
     * milliseconds, so any node can say when an execution started from its id alone.
     */
    static String newId(Instant now) {
        UUID random = UUID.randomUUID();
        long msb = (now.toEpochMilli() << 16) | ((long) UUID_VERSION_TIME_ORDERED << 12)
                | (random.getMostSignificantBits() & 0x0FFFL);
        return ID_PREFIX + new UUID(msb, random.getLeastSignificantBits());
    }

    /** The sandbox an execution id names (a run inside it), if any. */
    public static Optional<String> sandboxOf(String id) {
        if (id.length() <= BASE_ID_LENGTH + 1 || !id.startsWith(ID_PREFIX) || id.charAt(BASE_ID_LENGTH) != SANDBOX_SEPARATOR) {
            return Optional.empty();
        }
        return Optional.of(id.substring(BASE_ID_LENGTH + 1));
    }

    /** When the execution with this id started, if the id is one this gateway made. */
    public static Optional<Instant> startedAt(String id) {
        if (!id.startsWith(ID_PREFIX) || id.length() < BASE_ID_LENGTH
                || (id.length() > BASE_ID_LENGTH && sandboxOf(id).isEmpty())) {
            return Optional.empty();
        }
        try {
            UUID uuid = UUID.fromString(id.substring(ID_PREFIX.length(), BASE_ID_LENGTH));
            return uuid.version() == UUID_VERSION_TIME_ORDERED
                    ? Optional.of(Instant.ofEpochMilli(uuid.getMostSignificantBits() >>> 16)) : Optional.empty();
        } catch (IllegalArgumentException e) {
            return Optional.empty();
        }
    }
}
