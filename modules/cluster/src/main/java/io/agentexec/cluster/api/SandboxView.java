package io.agentexec.cluster.api;

import io.agentexec.cluster.CborSerializable;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import java.util.Objects;
import java.util.Optional;

/**
 * What the cluster knows of a sandbox, read from its entity's state.
 *
 * @param worker              the worker actor that holds its container, when bound
 * @param executions          executions that ended with a terminal result
 * @param workspaceLostReason set when its container was lost and the next execution will say so
 * @param image               the image asked for at creation; empty: the language's default image
 * @param docker              the sandbox options asked for at creation; empty: the engine's configured hardening
 */
public record SandboxView(String sandboxId, Status status, Optional<String> language, Optional<Limits> limits,
                          Optional<String> worker, long executions, Optional<String> workspaceLostReason,
                          Optional<String> closedReason, Optional<String> image, Optional<SandboxOptions> docker)
        implements CborSerializable {

    /** NONE: never created. EXPIRED: idle too long; its next execution runs in a fresh container. */
    public enum Status { NONE, ACTIVE, EXPIRED, CLOSED }

    public SandboxView {
        Objects.requireNonNull(sandboxId, "sandboxId");
        Objects.requireNonNull(status, "status");
        Objects.requireNonNull(language, "language");
        Objects.requireNonNull(limits, "limits");
        Objects.requireNonNull(worker, "worker");
        Objects.requireNonNull(workspaceLostReason, "workspaceLostReason");
        Objects.requireNonNull(closedReason, "closedReason");
        Objects.requireNonNull(image, "image");
        Objects.requireNonNull(docker, "docker");
    }

    /** The view without image and options (as before they existed). */
    public SandboxView(String sandboxId, Status status, Optional<String> language, Optional<Limits> limits,
                       Optional<String> worker, long executions, Optional<String> workspaceLostReason,
                       Optional<String> closedReason) {
        this(sandboxId, status, language, limits, worker, executions, workspaceLostReason, closedReason,
                Optional.empty(), Optional.empty());
    }
}
