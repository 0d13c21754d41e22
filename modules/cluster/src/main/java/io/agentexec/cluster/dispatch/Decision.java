package io.agentexec.cluster.dispatch;

import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.ExecutionOutcome;
import java.util.Optional;

/**
 * What the entity does next, as the {@link Dispatch} read a signal: record something as its own events and
 * hand the decision back through {@link Dispatch#recorded} (only then does the code run, a retry wait, or the
 * callers hear the outcome), submit, or nothing.
 */
public sealed interface Decision {

    /** Nothing to record or to send. */
    record Ignore() implements Decision {
    }

    /**
     * Submit the execution (again) with {@link Dispatch#submit}: the entity builds the job from its state,
     * which says where it may go (a sandbox's binding).
     */
    record Submit() implements Decision {
    }

    /**
     * A worker took the job: record attempt {@code attempt}'s start on {@code worker} (a worker the job was not
     * {@code pinned} to holds the sandbox's container from now on), then {@link Dispatch#recorded} lets the
     * worker run it (persist before run) and arms the queued watchdog.
     */
    record Start(int attempt, String worker, boolean pinned) implements Decision {
    }

    /**
     * The worker the job was pinned to no longer holds the workspace, and nothing ran: record the loss, then
     * submit again (now unpinned); the outcome will say the workspace was lost.
     */
    record Unbind(String reason) implements Decision {
    }

    /**
     * The attempt failed and another will follow: record the failure (after the attempt's start on
     * {@code unrecordedStart} when its worker was lost before the start was recorded), then
     * {@link Dispatch#recorded} arms the retry after the backoff.
     */
    record Retry(Attempt failed, Optional<String> unrecordedStart) implements Decision {
    }

    /**
     * The execution ends with {@code outcome}: record it (after the loss of the workspace, when
     * {@code workspaceLost} is set), then {@link Dispatch#recorded} answers everyone waiting.
     */
    record Finish(ExecutionOutcome outcome, Optional<String> workspaceLost) implements Decision {
    }

    /** Nothing ran and nothing is to be recorded: everyone waiting has been told; the dispatch is idle again. */
    record Refuse(ExecutionOutcome.Overloaded outcome) implements Decision {
    }
}
