package io.agentexec.sandbox.model;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * How a sandbox is hardened, in the backend's neutral vocabulary: network, read-only root, tmpfs mounts, user,
 * dropped capabilities, no-new-privileges, OCI runtime, name prefix. The defaults (from config,
 * {@code agentexec.sandbox.docker}) are the strict ones: no network, read-only root, tmpfs /tmp, a non-root user, no
 * capabilities, no-new-privileges. Each can be changed in config, or per sandbox through AG2's
 * {@code docker_run_args} ({@link io.agentexec.sandbox.options.RunArgs}) or options given directly, both checked by
 * {@link io.agentexec.sandbox.options.OptionRules}. The Docker backend applies them to its containers; the others
 * have their own fixed hardening.
 *
 * <p>Persisted inside the cluster's sandbox events (as {@code docker}): the component names are the stored field
 * names, so they do not change.
 *
 * @param networkMode    {@code none}, or a network the operator allows
 * @param tmpfs          mount point to tmpfs options ({@code rw,nosuid,size=64m})
 * @param runtime        an OCI runtime such as {@code runsc} (gVisor); empty for the daemon's default
 * @param namePrefix     AG2's {@code docker_container_name}: containers are named PREFIX-SESSIONID
 */
public record SandboxOptions(
        String networkMode,
        boolean readOnlyRootFilesystem,
        Map<String, String> tmpfs,
        String user,
        List<String> capDrop,
        boolean noNewPrivileges,
        Optional<String> runtime,
        Optional<String> namePrefix) {

    public SandboxOptions {
        Objects.requireNonNull(networkMode, "networkMode");
        tmpfs = Map.copyOf(tmpfs);
        Objects.requireNonNull(user, "user");
        capDrop = List.copyOf(capDrop);
        Objects.requireNonNull(runtime, "runtime");
        Objects.requireNonNull(namePrefix, "namePrefix");
    }

    public static SandboxOptions hardened() {
        return new SandboxOptions("none", true, Map.of("/tmp", "rw,nosuid,nodev,size=64m"), "65534:65534",
                List.of("ALL"), true, Optional.empty(), Optional.empty());
    }

    public SandboxOptions withNetworkMode(String value) {
        return new SandboxOptions(value, readOnlyRootFilesystem, tmpfs, user, capDrop, noNewPrivileges, runtime, namePrefix);
    }

    public SandboxOptions withReadOnlyRootFilesystem(boolean value) {
        return new SandboxOptions(networkMode, value, tmpfs, user, capDrop, noNewPrivileges, runtime, namePrefix);
    }

    public SandboxOptions withTmpfs(String path, String options) {
        Map<String, String> next = new LinkedHashMap<>(tmpfs);
        next.put(path, options);
        return new SandboxOptions(networkMode, readOnlyRootFilesystem, next, user, capDrop, noNewPrivileges, runtime, namePrefix);
    }

    public SandboxOptions withUser(String value) {
        return new SandboxOptions(networkMode, readOnlyRootFilesystem, tmpfs, value, capDrop, noNewPrivileges, runtime, namePrefix);
    }

    public SandboxOptions withCapDrop(List<String> value) {
        return new SandboxOptions(networkMode, readOnlyRootFilesystem, tmpfs, user, value, noNewPrivileges, runtime, namePrefix);
    }

    public SandboxOptions withNoNewPrivileges(boolean value) {
        return new SandboxOptions(networkMode, readOnlyRootFilesystem, tmpfs, user, capDrop, value, runtime, namePrefix);
    }

    public SandboxOptions withRuntime(Optional<String> value) {
        return new SandboxOptions(networkMode, readOnlyRootFilesystem, tmpfs, user, capDrop, noNewPrivileges, value, namePrefix);
    }

    public SandboxOptions withNamePrefix(Optional<String> value) {
        return new SandboxOptions(networkMode, readOnlyRootFilesystem, tmpfs, user, capDrop, noNewPrivileges, runtime, value);
    }
}
