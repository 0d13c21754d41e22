package io.agentexec.cluster.api;

import java.util.Objects;

/** A file operation on a sandbox that could not be done; a bad path is an {@code InvalidRequestException} instead. */
public final class SandboxFileException extends RuntimeException {

    public enum Kind {
        /** No such file in the workspace. */
        NOT_FOUND,
        /** The file is larger than the caller's maxBytes. */
        TOO_LARGE,
        /** The sandbox was never created, or is closed. */
        NO_SANDBOX,
        /** The sandbox's container was lost or expired: its files are gone. */
        WORKSPACE_LOST,
        /** The worker failed (container gone, no answer). */
        FAILED,
        /** The worker's file threads and their queue are all taken: refused at once, nothing was done; try again. */
        BUSY
    }

    private final Kind kind;

    public SandboxFileException(Kind kind, String message) {
        super(message);
        this.kind = Objects.requireNonNull(kind, "kind");
    }

    public Kind kind() {
        return kind;
    }
}
