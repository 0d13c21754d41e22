package io.agentexec.sandbox.backend;

import java.util.Objects;
import java.util.Optional;

/**
 * What the health check at engine start found for one runtime the engine may use (for Docker the OCI runtimes, see
 * {@code agentexec.sandbox.docker.runtime-probe}): a backend capability ({@link SandboxBackend#runtimeHealth}) that
 * readiness and metrics report.
 *
 * @param runtime the runtime, empty for the daemon's default
 * @param detail  what the check saw: the failure for an unhealthy runtime, why it was not checked otherwise
 */
public record RuntimeHealth(Optional<String> runtime, Status status, String detail) {
    public enum Status {
        /** The check is still running; a request for the runtime waits for it. */
        PENDING,
        HEALTHY,
        /** The check failed: every request for the runtime is refused, naming {@link #detail}. */
        UNHEALTHY,
        /** Not checked (turned off, or its image is absent): used, with a warning logged at start. */
        NOT_CHECKED
    }

    public RuntimeHealth {
        Objects.requireNonNull(runtime, "runtime");
        Objects.requireNonNull(status, "status");
        Objects.requireNonNull(detail, "detail");
    }

    /** The runtime's name, {@code default} for the daemon's default. */
    public String name() {
        return runtime.orElse("default");
    }

    @Override
    public String toString() {
        return "runtime " + name() + ": " + status.name().toLowerCase(java.util.Locale.ROOT).replace('_', ' ')
                + (detail.isEmpty() ? "" : " (" + detail + ")");
    }
}
