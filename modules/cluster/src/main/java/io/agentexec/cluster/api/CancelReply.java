package io.agentexec.cluster.api;

import io.agentexec.cluster.CborSerializable;
import java.util.Objects;

/**
 * The answer to a cancel request. It never is the execution's result: that still comes, once, as
 * the execution's {@link ExecutionOutcome} (a {@code Completed} with verdict CANCELLED when the cancel
 * took effect, or the real result when the code finished first).
 */
public record CancelReply(String executionKey, Outcome outcome, String message) implements CborSerializable {

    public enum Outcome {
        /** It was running, queued or waiting: it is being stopped and its terminal reply will follow. */
        CANCELLING,
        /** It had already ended; nothing changed. */
        ALREADY_FINISHED,
        /** No such execution (or sandbox) is known; nothing changed. */
        UNKNOWN
    }

    public CancelReply {
        Objects.requireNonNull(executionKey, "executionKey");
        Objects.requireNonNull(outcome, "outcome");
        Objects.requireNonNull(message, "message");
    }
}
