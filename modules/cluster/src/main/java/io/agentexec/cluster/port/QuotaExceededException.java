package io.agentexec.cluster.port;

import java.time.Duration;

/** The caller holds as many live sandboxes as it may: nothing was created. HTTP 429, gRPC RESOURCE_EXHAUSTED. */
public final class QuotaExceededException extends RuntimeException {
    private final Duration retryAfter;

    public QuotaExceededException(String message, Duration retryAfter) {
        super(message);
        this.retryAfter = retryAfter;
    }

    /** When it is worth asking again: a sandbox frees up when its owner deletes it. */
    public Duration retryAfter() {
        return retryAfter;
    }
}
