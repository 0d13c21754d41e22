package io.agentexec.cluster.port;

import java.util.Objects;

/**
 * A sandbox file operation that could not be done for a reason the client should see (a bad path is an
 * {@link io.agentexec.sandbox.model.InvalidRequestException} instead). The protocols map the kind to a
 * status: HTTP 404 / 413 / 503, gRPC NOT_FOUND / OUT_OF_RANGE / UNAVAILABLE.
 */
public final class SandboxFileError extends RuntimeException {

    public enum Kind {
        /** No such file in the workspace (or the workspace was lost with the sandbox's container). */
        NOT_FOUND,
        /** The file is larger than this gateway hands out in one response. */
        TOO_LARGE,
        /** The sandbox's container or worker failed; trying again later may work. */
        UNAVAILABLE
    }

    private final Kind kind;

    public SandboxFileError(Kind kind, String message) {
        super(Objects.requireNonNull(message, "message"), null, false, false);
        this.kind = Objects.requireNonNull(kind, "kind");
    }

    public Kind kind() {
        return kind;
    }
}
