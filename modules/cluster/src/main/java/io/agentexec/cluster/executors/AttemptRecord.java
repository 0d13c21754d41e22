package io.agentexec.cluster.executors;

import io.agentexec.cluster.CborSerializable;
import java.time.Instant;
import java.util.Objects;

/**
 * One attempt of a run (RobustCodeExecutor's {@code execution_history} entry: attempt, success, result or error).
 *
 * @param executionId the id the attempt ran under (each attempt is a run of its own, readable by it)
 * @param outcome     the verdict ({@code OK}, {@code RUNTIME_ERROR}, ...) or, when nothing was judged, the outcome's
 *                    status ({@code SANDBOX_LOST}, {@code OVERLOADED}, ...)
 * @param message     why, in words (the verdict's message or the refusal's reason); may be empty
 */
public record AttemptRecord(int attempt, String executionId, boolean success, String outcome, int exitCode,
                            long wallTimeMs, String message, Instant at) implements CborSerializable {
    public AttemptRecord {
        Objects.requireNonNull(executionId, "executionId");
        Objects.requireNonNull(outcome, "outcome");
        Objects.requireNonNull(message, "message");
        Objects.requireNonNull(at, "at");
    }
}
