package io.agentexec.cluster.port;

import io.agentexec.cluster.api.ExecutionOutcome;
import java.util.Objects;
import java.util.Optional;

/** An execution some node started, as the port finds it by its id: still running (no outcome yet) or ended. */
public record ExecutionView(Optional<ExecutionOutcome> outcome) {
    public ExecutionView {
        Objects.requireNonNull(outcome, "outcome");
    }

    public static ExecutionView running() {
        return new ExecutionView(Optional.empty());
    }

    public static ExecutionView ended(ExecutionOutcome outcome) {
        return new ExecutionView(Optional.of(outcome));
    }
}
