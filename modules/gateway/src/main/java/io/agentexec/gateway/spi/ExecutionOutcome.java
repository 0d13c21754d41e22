package io.agentexec.gateway.spi;

import io.agentexec.sandbox.model.ExecutionResult;
import java.util.Objects;
import java.util.Optional;

/** The one terminal answer to an execution, as the gateway needs to tell it apart. */
public sealed interface ExecutionOutcome {

    /** The engine judged the run (user-code failures included). {@code note} says e.g. that a workspace was lost. */
    record Completed(ExecutionResult result, Optional<String> note) implements ExecutionOutcome {
        public Completed {
            Objects.requireNonNull(result, "result");
            Objects.requireNonNull(note, "note");
        }
    }

    /** No capacity now; nothing ran and the caller may retry later. */
    record Overloaded(String reason) implements ExecutionOutcome {
        public Overloaded {
            Objects.requireNonNull(reason, "reason");
        }
    }

    /** The named sandbox does not exist for this tenant. */
    record NotFound(String reason) implements ExecutionOutcome {
        public NotFound {
            Objects.requireNonNull(reason, "reason");
        }
    }

    /** The request cannot run as given; nothing ran. */
    record Rejected(String reason) implements ExecutionOutcome {
        public Rejected {
            Objects.requireNonNull(reason, "reason");
        }
    }

    /** Infrastructure failed mid-run (worker or container lost, node stopping): the code may or may not have run. */
    record Unavailable(String reason) implements ExecutionOutcome {
        public Unavailable {
            Objects.requireNonNull(reason, "reason");
        }
    }

    /** The caller went away and the run was stopped. */
    record Cancelled(String reason) implements ExecutionOutcome {
        public Cancelled {
            Objects.requireNonNull(reason, "reason");
        }
    }
}
