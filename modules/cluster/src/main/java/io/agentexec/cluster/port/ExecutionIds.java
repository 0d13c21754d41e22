package io.agentexec.cluster.port;

import java.time.Instant;
import java.util.Optional;
import java.util.UUID;

/**
 * The ids of executions: "exe-" and a time-ordered UUID (RFC 9562 version 7), whose first 48 bits are the start in
 * Unix milliseconds, so any node can say when an execution started from its id alone; a run inside a sandbox has the
 * sandbox's id after a '.' ({@code exe-UUID.SANDBOX}), so any node finds the run in that sandbox's record.
 */
public final class ExecutionIds {
    private static final String PREFIX = "exe-";
    private static final int UUID_VERSION_TIME_ORDERED = 7;
    /** "exe-" and a UUID's 36 characters: what every id begins with. */
    private static final int BASE_LENGTH = PREFIX.length() + 36;
    private static final char SANDBOX_SEPARATOR = '.';
    /**
     * The longest sandbox id an execution id names: the cluster key {@code TENANT:ID} stays within the cluster's 200
     * characters for any tenant (64). Sandbox ids made here are 40 characters; a longer one names no sandbox (the run
     * is refused as not found) and its id is the plain one.
     */
    private static final int MAX_SANDBOX_IN_ID = 200 - 64 - 1 - BASE_LENGTH - 1;

    private ExecutionIds() {
    }

    /** A new id started at {@code now} (milliseconds are what it carries), naming {@code sandboxId} when given. */
    public static String newId(Instant now, Optional<String> sandboxId) {
        UUID random = UUID.randomUUID();
        long msb = (now.toEpochMilli() << 16) | ((long) UUID_VERSION_TIME_ORDERED << 12)
                | (random.getMostSignificantBits() & 0x0FFFL);
        return PREFIX + new UUID(msb, random.getLeastSignificantBits())
                + sandboxId.filter(s -> s.length() <= MAX_SANDBOX_IN_ID).map(s -> SANDBOX_SEPARATOR + s).orElse("");
    }

    /** The sandbox an execution id names (a run inside it), if any. */
    public static Optional<String> sandboxOf(String id) {
        if (id.length() <= BASE_LENGTH + 1 || !id.startsWith(PREFIX) || id.charAt(BASE_LENGTH) != SANDBOX_SEPARATOR) {
            return Optional.empty();
        }
        return Optional.of(id.substring(BASE_LENGTH + 1));
    }

    /** When the execution with this id started, if the id is one made here. */
    public static Optional<Instant> startedAt(String id) {
        if (!id.startsWith(PREFIX) || id.length() < BASE_LENGTH
                || (id.length() > BASE_LENGTH && sandboxOf(id).isEmpty())) {
            return Optional.empty();
        }
        try {
            UUID uuid = UUID.fromString(id.substring(PREFIX.length(), BASE_LENGTH));
            return uuid.version() == UUID_VERSION_TIME_ORDERED
                    ? Optional.of(Instant.ofEpochMilli(uuid.getMostSignificantBits() >>> 16)) : Optional.empty();
        } catch (IllegalArgumentException e) {
            return Optional.empty();
        }
    }
}
