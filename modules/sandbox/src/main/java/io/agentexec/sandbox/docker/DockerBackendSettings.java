package io.agentexec.sandbox.docker;

import io.agentexec.sandbox.model.Limits;
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
 */
public record DockerBackendSettings(
        DockerOptions defaults,
        List<String> warmImages,
        int warmPoolSize,
        Limits poolLimits,
        String workspace,
        Duration agentStartTimeout,
        Set<String> allowedNetworks,
        Set<String> allowedRuntimes,
        Map<String, Integer> runtimeHostPids,
        Removal removal) {

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
                allowedNetworks, allowedRuntimes, runtimeHostPids, removal);
    }
}
