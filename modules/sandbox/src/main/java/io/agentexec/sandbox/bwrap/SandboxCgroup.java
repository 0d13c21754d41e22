package io.agentexec.sandbox.bwrap;

import io.agentexec.sandbox.model.Limits;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** A memory and a pids cgroup (v1) for one bubblewrap sandbox, removed when it closes. */
final class SandboxCgroup implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(SandboxCgroup.class);

    private final Path memory;
    private final Path pids;

    private SandboxCgroup(Path memory, Path pids) {
        this.memory = memory;
        this.pids = pids;
    }

    /** Creates the groups, or returns empty where this machine does not let us (not root, no v1 controllers). */
    static Optional<SandboxCgroup> create(BubblewrapSettings settings, String sessionId, Limits limits) {
        Path memoryParent = settings.cgroupRoot().resolve("memory").resolve(settings.cgroupParent());
        Path pidsParent = settings.cgroupRoot().resolve("pids").resolve(settings.cgroupParent());
        if (!Files.isWritable(memoryParent.getParent()) || !Files.isWritable(pidsParent.getParent())) {
            return Optional.empty();
        }
        Path memory = memoryParent.resolve(sessionId);
        Path pids = pidsParent.resolve(sessionId);
        try {
            Files.createDirectories(memory);
            Files.createDirectories(pids);
            write(memory.resolve("memory.limit_in_bytes"), limits.memoryBytes());
            Path memsw = memory.resolve("memory.memsw.limit_in_bytes");
            if (Files.exists(memsw)) {
                write(memsw, limits.memoryBytes());
            }
            write(pids.resolve("pids.max"), limits.pids());
            return Optional.of(new SandboxCgroup(memory, pids));
        } catch (IOException e) {
            log.warn("cannot set up cgroups for sandbox {} ({}); falling back to rlimits", sessionId, e.getMessage());
            removeQuietly(memory);
            removeQuietly(pids);
            return Optional.empty();
        }
    }

    private static void write(Path file, long value) throws IOException {
        Files.writeString(file, Long.toString(value));
    }

    Path memory() {
        return memory;
    }

    Path pids() {
        return pids;
    }

    @Override
    public void close() {
        removeQuietly(memory);
        removeQuietly(pids);
    }

    /** A cgroup can only be removed once empty; its last processes may take a moment to be reaped. */
    private static void removeQuietly(Path group) {
        for (int attempt = 0; attempt < 50; attempt++) {
            try {
                Files.deleteIfExists(group);
                return;
            } catch (IOException e) {
                try {
                    Thread.sleep(20);
                } catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
        log.warn("cgroup {} is still busy; left for the next start", group);
    }
}
