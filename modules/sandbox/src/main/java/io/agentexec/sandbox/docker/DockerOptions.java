package io.agentexec.sandbox.docker;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * How a sandbox container is hardened. The defaults (from config) are the strict ones: no network,
 * read-only root, tmpfs /tmp, a non-root user, no capabilities, no-new-privileges. Each can be
 * changed in config, or per session through AG2's {@code docker_run_args} ({@link DockerRunArgs}).
 *
 * @param tmpfs          mount point to tmpfs options ({@code rw,nosuid,size=64m})
 * @param runtime        an OCI runtime such as {@code runsc} (gVisor); empty for the daemon's default
 * @param namePrefix     AG2's {@code docker_container_name}: containers are named PREFIX-SESSIONID
 */
public record DockerOptions(
        String networkMode,
        boolean readOnlyRootFilesystem,
        Map<String, String> tmpfs,
        String user,
        List<String> capDrop,
        boolean noNewPrivileges,
        Optional<String> runtime,
        Optional<String> namePrefix) {

    public DockerOptions {
        Objects.requireNonNull(networkMode, "networkMode");
        tmpfs = Map.copyOf(tmpfs);
        Objects.requireNonNull(user, "user");
        capDrop = List.copyOf(capDrop);
        Objects.requireNonNull(runtime, "runtime");
        Objects.requireNonNull(namePrefix, "namePrefix");
    }

    public static DockerOptions hardened() {
        return new DockerOptions("none", true, Map.of("/tmp", "rw,nosuid,nodev,size=64m"), "65534:65534",
                List.of("ALL"), true, Optional.empty(), Optional.empty());
    }

    public DockerOptions withNetworkMode(String value) {
        return new DockerOptions(value, readOnlyRootFilesystem, tmpfs, user, capDrop, noNewPrivileges, runtime, namePrefix);
    }

    public DockerOptions withReadOnlyRootFilesystem(boolean value) {
        return new DockerOptions(networkMode, value, tmpfs, user, capDrop, noNewPrivileges, runtime, namePrefix);
    }

    public DockerOptions withTmpfs(String path, String options) {
        Map<String, String> next = new LinkedHashMap<>(tmpfs);
        next.put(path, options);
        return new DockerOptions(networkMode, readOnlyRootFilesystem, next, user, capDrop, noNewPrivileges, runtime, namePrefix);
    }

    public DockerOptions withUser(String value) {
        return new DockerOptions(networkMode, readOnlyRootFilesystem, tmpfs, value, capDrop, noNewPrivileges, runtime, namePrefix);
    }

    public DockerOptions withCapDrop(List<String> value) {
        return new DockerOptions(networkMode, readOnlyRootFilesystem, tmpfs, user, value, noNewPrivileges, runtime, namePrefix);
    }

    public DockerOptions withNoNewPrivileges(boolean value) {
        return new DockerOptions(networkMode, readOnlyRootFilesystem, tmpfs, user, capDrop, value, runtime, namePrefix);
    }

    public DockerOptions withRuntime(Optional<String> value) {
        return new DockerOptions(networkMode, readOnlyRootFilesystem, tmpfs, user, capDrop, noNewPrivileges, value, namePrefix);
    }

    public DockerOptions withNamePrefix(Optional<String> value) {
        return new DockerOptions(networkMode, readOnlyRootFilesystem, tmpfs, user, capDrop, noNewPrivileges, runtime, value);
    }
}
