package io.agentexec.cluster.worker;

import io.agentexec.sandbox.SandboxSession;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The live sandbox sessions (containers) of this worker node, by sandbox id. Kept outside the
 * worker actor so that a supervised restart of the actor does not lose track of containers.
 */
public final class SessionTable implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(SessionTable.class);

    private record Entry(SandboxSession session, Instant lastUsed) {
    }

    private final Map<String, Entry> sessions = new ConcurrentHashMap<>();
    private final Clock clock;

    public SessionTable(Clock clock) {
        this.clock = clock;
    }

    public Optional<SandboxSession> find(String sandboxId) {
        return Optional.ofNullable(sessions.get(sandboxId)).map(Entry::session);
    }

    public boolean contains(String sandboxId) {
        return sessions.containsKey(sandboxId);
    }

    public void put(String sandboxId, SandboxSession session) {
        Entry previous = sessions.put(sandboxId, new Entry(session, clock.instant()));
        if (previous != null && previous.session() != session) {
            previous.session().close();
        }
    }

    public void touch(String sandboxId) {
        sessions.computeIfPresent(sandboxId, (id, e) -> new Entry(e.session(), clock.instant()));
    }

    /** Removes and closes (removes the container of) a sandbox's session; false when there was none. */
    public boolean close(String sandboxId) {
        Entry entry = sessions.remove(sandboxId);
        if (entry == null) {
            return false;
        }
        closeQuietly(sandboxId, entry.session());
        return true;
    }

    /** Closes sessions unused for longer than {@code maxIdle}; returns their sandbox ids. */
    public List<String> closeIdle(Duration maxIdle) {
        Instant cutoff = clock.instant().minus(maxIdle);
        List<String> closed = new ArrayList<>();
        sessions.forEach((id, entry) -> {
            if (entry.lastUsed().isBefore(cutoff) && sessions.remove(id, entry)) {
                closeQuietly(id, entry.session());
                closed.add(id);
            }
        });
        return closed;
    }

    /** The sandboxes whose containers this node holds now. */
    public List<String> ids() {
        return List.copyOf(sessions.keySet());
    }

    public int size() {
        return sessions.size();
    }

    @Override
    public void close() {
        sessions.keySet().forEach(this::close);
    }

    private static void closeQuietly(String sandboxId, SandboxSession session) {
        try {
            session.close();
        } catch (RuntimeException e) {
            log.warn("closing the container of sandbox {} failed: {}", sandboxId, e.toString());
        }
    }
}
