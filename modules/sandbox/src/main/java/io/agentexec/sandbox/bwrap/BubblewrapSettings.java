package io.agentexec.sandbox.bwrap;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * Settings of the bubblewrap backend, from {@code agentexec.sandbox.bwrap} in config.
 *
 * @param readOnlyBinds host paths exposed read-only inside (missing ones are skipped)
 * @param cgroupRoot    the cgroup v1 mount (usually /sys/fs/cgroup) under which per-sandbox memory
 *                      and pids groups are made; where it is not writable, limits fall back to rlimits
 * @param cgroupParent  the group under each controller that holds agentexec's sandboxes
 * @param tmpSizeBytes  size of the private /tmp
 */
public record BubblewrapSettings(
        String executable,
        List<String> readOnlyBinds,
        Path cgroupRoot,
        String cgroupParent,
        long tmpSizeBytes,
        String workspace,
        String user,
        Duration agentStartTimeout,
        Path runtimeDirectory) {

    public BubblewrapSettings {
        Objects.requireNonNull(executable, "executable");
        readOnlyBinds = List.copyOf(readOnlyBinds);
        Objects.requireNonNull(cgroupRoot, "cgroupRoot");
        Objects.requireNonNull(cgroupParent, "cgroupParent");
        Objects.requireNonNull(workspace, "workspace");
        Objects.requireNonNull(user, "user");
        Objects.requireNonNull(agentStartTimeout, "agentStartTimeout");
        Objects.requireNonNull(runtimeDirectory, "runtimeDirectory");
    }
}
