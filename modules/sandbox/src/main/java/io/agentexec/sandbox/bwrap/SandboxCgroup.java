package io.agentexec.sandbox.bwrap;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cgroups of one bubblewrap sandbox, removed when it closes.
 *
 * @param groups directories whose {@code cgroup.procs} the launcher joins before bwrap starts (one per v1
 *               controller, or the single v2 group)
 * @param binds  host group directory to the path where the sandbox sees it, read-only (the agent reads its OOM
 *               counter there; user code may read its own counters)
 */
record SandboxCgroup(List<Path> groups, Map<Path, String> binds) implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(SandboxCgroup.class);

    SandboxCgroup {
        groups = List.copyOf(groups);
        binds = Map.copyOf(binds);
    }

    @Override
    public void close() {
        groups.forEach(SandboxCgroup::removeQuietly);
    }

    /** A cgroup can only be removed once empty; its last processes may take a moment to be reaped. */
    static void removeQuietly(Path group) {
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
