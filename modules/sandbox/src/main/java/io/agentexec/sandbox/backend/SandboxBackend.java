package io.agentexec.sandbox.backend;

import java.util.List;
import java.util.Map;

/**
 * A way to make sandboxes: Docker containers, bubblewrap namespaces, or (unsafe) plain processes. Besides opening
 * sandboxes a backend answers what callers ask of its capabilities (an image, its warm pool, its runtimes' health),
 * with neutral answers where it has no such thing, so that nobody needs to know which backend it is.
 */
public interface SandboxBackend extends AutoCloseable {
    /** {@code docker}, {@code bwrap} or {@code unsafe-local}. */
    String name();

    /** Creates (or takes from a warm pool) a sandbox whose agent has greeted. */
    BackendSession open(SessionSpec spec);

    /** Whether sandboxes can be made from {@code image} here; may ask a daemon, so not for an actor's thread. */
    default ImagePresence imagePresence(String image) {
        return ImagePresence.UNKNOWN;
    }

    /** Ready sandboxes per image kept by a warm pool, for metrics; empty without one. */
    default Map<String, Integer> warmPoolSizes() {
        return Map.of();
    }

    /**
     * The health check of each runtime this backend may use, as known now (a check may still be running); empty for
     * a backend without such checks. A runtime that failed its check is refused to every request, naming the failure.
     */
    default List<RuntimeHealth> runtimeHealth() {
        return List.of();
    }

    /**
     * Removes the sandboxes whose owner is gone, {@code judge} saying which cluster nodes are (see
     * {@link OwnerLiveness}); returns how many. None for a backend whose sandboxes die with their JVM (bwrap).
     */
    default int reapOrphans(OwnerLiveness judge) {
        return 0;
    }

    /**
     * The backend's owner closes it before the JVM exits (after draining what runs: a cluster node's coordinated
     * shutdown): the backend's own exit-time clean-up, which would remove its sandboxes at once while they still run,
     * is dropped. Nothing to do for a backend without one.
     */
    default void ownerClosesAtExit() {
    }

    /** Removes every sandbox this backend made. */
    @Override
    void close();
}
