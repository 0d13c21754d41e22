package io.agentexec.sandbox.docker;

import io.agentexec.sandbox.model.Limits;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * Settings of the Docker backend, from {@code agentexec.sandbox.docker} in config.
 *
 * @param warmImages     images to keep pre-created containers of
 * @param warmPoolSize   how many ready containers to keep per warm image
 * @param poolLimits     limits the pooled containers are created with (a session may change memory, CPUs, pids)
 * @param workspace      where the workspace tmpfs is mounted inside the container
 */
public record DockerBackendSettings(
        DockerOptions defaults,
        List<String> warmImages,
        int warmPoolSize,
        Limits poolLimits,
        String workspace,
        Duration agentStartTimeout,
        Set<String> allowedNetworks,
        Set<String> allowedRuntimes) {

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
    }

    /** The same settings with another warm-pool size (0 for one-shot use such as the CLI). */
    public DockerBackendSettings withWarmPoolSize(int size) {
        return new DockerBackendSettings(defaults, warmImages, size, poolLimits, workspace, agentStartTimeout,
                allowedNetworks, allowedRuntimes);
    }
}
