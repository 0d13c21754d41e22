package io.agentexec.sandbox.docker;

import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import io.agentexec.sandbox.options.OptionRules;
import io.agentexec.sandbox.options.SandboxUser;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * Settings of the Docker backend, from {@code agentexec.sandbox.docker} in config.
 *
 * @param warmImages     images to keep pre-created containers of
 * @param warmPoolSize   how many ready containers to keep per warm image
 * @param poolLimits     limits the pooled containers are created with (a session may change memory, CPUs, pids)
 * @param workspace      where the workspace tmpfs is mounted inside the container
 * @param runtimeHostPids per OCI runtime with a kernel of its own, the pids limit of its host cgroup: the
 *                       runtime's own threads and helper processes count there (gVisor's sentry and its ptrace
 *                       stubs), so the user's limit is enforced inside and this one only protects the host
 * @param removal        how closed sessions' containers are removed: after the caller got its answer, in the background
 * @param allowedRuntimes runtimes a sandbox may ask for besides the configured one ({@code defaults.runtime()}, empty
 *                       for the daemon's default); empty: only the configured one (see {@link OptionRules#runtimeProblem})
 * @param runtimeProbe   the health run each runtime the engine may use gets at start
 */
public record DockerBackendSettings(
        SandboxOptions defaults,
        List<String> warmImages,
        int warmPoolSize,
        Limits poolLimits,
        String workspace,
        Duration agentStartTimeout,
        Set<String> allowedNetworks,
        Set<String> allowedRuntimes,
        Map<String, Integer> runtimeHostPids,
        Removal removal,
        RuntimeProbe runtimeProbe) {

    /**
     * A small health run in a real container of each runtime the engine may use, at engine start: a runtime that
     * cannot list {@code /proc} or start a handful of processes within {@code timeout} is reported and refused.
     * The bound is a health bound (a runtime that works takes a small fraction of it), not a speed requirement.
     *
     * @param image   the image the probe container runs (it needs {@code sh} and {@code ls})
     * @param spawns  processes the probe starts, one after the other
     * @param timeout how long those may take, the container's start not counted
     */
    public record RuntimeProbe(boolean enabled, String image, int spawns, Duration timeout) {
        public RuntimeProbe {
            Objects.requireNonNull(image, "image");
            Objects.requireNonNull(timeout, "timeout");
            if (spawns < 1) {
                throw new IllegalArgumentException("runtime-probe.spawns must be positive, got " + spawns);
            }
        }
    }

    /**
     * Removal of closed sessions' containers ({@code docker rm -f}, a large part of a one-off's cost) on a
     * bounded pool, so that closing a session does not wait for it. The session's agent is gone before
     * (its stdin closed, every process of the sandbox killed with it); only the stopped container waits.
     *
     * @param threads   removals at once
     * @param queue     removals waiting; past that the closing thread removes the container itself
     * @param closeWait how long closing the backend waits for pending removals before removing what is left itself
     */
    public record Removal(int threads, int queue, Duration closeWait) {
        public Removal {
            if (threads < 1 || queue < 0) {
                throw new IllegalArgumentException("docker.removal needs threads >= 1 and queue >= 0, got "
                        + threads + " and " + queue);
            }
            Objects.requireNonNull(closeWait, "closeWait");
        }
    }

    public DockerBackendSettings {
        Objects.requireNonNull(defaults, "defaults");
        try {
            SandboxUser.parse(defaults.user());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("docker defaults: the user could run sandboxes as root: " + e.getMessage(), e);
        }
        warmImages = List.copyOf(warmImages);
        if (warmPoolSize < 0) {
            throw new IllegalArgumentException("warm-pool.size must not be negative");
        }
        Objects.requireNonNull(poolLimits, "poolLimits");
        Objects.requireNonNull(workspace, "workspace");
        Objects.requireNonNull(agentStartTimeout, "agentStartTimeout");
        allowedNetworks = Set.copyOf(allowedNetworks);
        allowedRuntimes = Set.copyOf(allowedRuntimes);
        runtimeHostPids = Map.copyOf(runtimeHostPids);
        runtimeHostPids.forEach((runtime, pids) -> {
            if (pids < 1) {
                throw new IllegalArgumentException("runtime-host-pids." + runtime + " must be positive");
            }
        });
        Objects.requireNonNull(removal, "removal");
        Objects.requireNonNull(runtimeProbe, "runtimeProbe");
    }

    /** The engine's rules on sandbox options: these defaults as the floor, the allowed networks and runtimes. */
    public OptionRules rules() {
        return new OptionRules(defaults, allowedNetworks, allowedRuntimes);
    }

    /** Every runtime a sandbox of this engine may use: the configured one (empty: the daemon's default) and the listed. */
    public List<Optional<String>> usableRuntimes() {
        return rules().usableRuntimes();
    }

    /**
     * The pids limit of the container's host cgroup: the user's limit, or for a runtime with its own kernel the
     * runtime's host limit (with only the user's limit there gVisor's sentry cannot start the host threads it runs
     * user processes on, and panics).
     */
    public long hostPidsLimit(int pids, Optional<String> runtime) {
        return runtime.map(runtimeHostPids::get).orElse(pids);
    }

    /** Whether the runtime gives the container a kernel of its own, which then counts the user's processes. */
    public boolean hasOwnKernel(Optional<String> runtime) {
        return runtime.map(runtimeHostPids::containsKey).orElse(false);
    }

    /** The same settings with another warm-pool size (0 for one-shot use such as the CLI). */
    public DockerBackendSettings withWarmPoolSize(int size) {
        return new DockerBackendSettings(defaults, warmImages, size, poolLimits, workspace, agentStartTimeout,
                allowedNetworks, allowedRuntimes, runtimeHostPids, removal, runtimeProbe);
    }
}
