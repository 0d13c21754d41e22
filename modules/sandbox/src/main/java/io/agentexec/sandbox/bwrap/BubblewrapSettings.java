package io.agentexec.sandbox.bwrap;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * Settings of the bubblewrap backend, from {@code agentexec.sandbox.bwrap} in config.
 *
 * @param readOnlyBinds host paths exposed read-only inside (missing ones are skipped)
 * @param cgroupRoot    where per-sandbox cgroups are made: the cgroup v1 mount (usually /sys/fs/cgroup, one
 *                      directory per controller), or a cgroup v2 directory (the unified mount or a subtree delegated
 *                      to this JVM's user); where it is not writable, limits fall back to rlimits
 * @param cgroupParent  the group (under each v1 controller, or under the v2 root) that holds agentexec's sandboxes
 * @param tmpSizeBytes  size of the private /tmp
 * @param shmSizeBytes  size of the private /dev/shm
 * @param user          uid:gid of code inside the sandbox's user namespace
 * @param hostUser      uid:gid on the host that the sandbox's user namespace maps onto when this JVM runs as root
 *                      (the launcher drops to it before bwrap starts); never 0
 */
public record BubblewrapSettings(
        String executable,
        List<String> readOnlyBinds,
        Path cgroupRoot,
        String cgroupParent,
        long tmpSizeBytes,
        long shmSizeBytes,
        String workspace,
        String user,
        String hostUser,
        Duration agentStartTimeout,
        Path runtimeDirectory) {

    public BubblewrapSettings {
        Objects.requireNonNull(executable, "executable");
        readOnlyBinds = List.copyOf(readOnlyBinds);
        Objects.requireNonNull(cgroupRoot, "cgroupRoot");
        Objects.requireNonNull(cgroupParent, "cgroupParent");
        Objects.requireNonNull(workspace, "workspace");
        Objects.requireNonNull(user, "user");
        Objects.requireNonNull(hostUser, "hostUser");
        Objects.requireNonNull(agentStartTimeout, "agentStartTimeout");
        Objects.requireNonNull(runtimeDirectory, "runtimeDirectory");
        if (!hostUser.matches("\\d+:\\d+") || hostUser.matches("0+:.*|.*:0+")) {
            throw new IllegalArgumentException("agentexec.sandbox.bwrap.host-user (AGENTEXEC_BWRAP_HOST_USER) must be "
                    + "UID:GID, numeric, neither of them 0, got '" + hostUser + "'");
        }
        if (!user.matches("\\d+(:\\d+)?")) {
            throw new IllegalArgumentException("agentexec.sandbox.bwrap.user must be UID or UID:GID, numeric, got '" + user + "'");
        }
    }
}
