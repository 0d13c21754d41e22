package io.agentexec.gateway.executions;

import io.agentexec.cluster.api.ExecutionOutcome;
import java.util.Objects;

/** What a follower of an execution sees: output while it runs, then exactly one end. */
public sealed interface ExecutionEvent {
    long sequence();

    record Output(long sequence, String stream, String text) implements ExecutionEvent {
        public Output {
            Objects.requireNonNull(stream, "stream");
            Objects.requireNonNull(text, "text");
        }
    }

    record End(long sequence, ExecutionOutcome outcome) implements ExecutionEvent {
        public End {
            Objects.requireNonNull(outcome, "outcome");
        }
    }
}
