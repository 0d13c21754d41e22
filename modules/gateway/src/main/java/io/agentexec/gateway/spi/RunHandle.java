package io.agentexec.gateway.spi;

import java.util.concurrent.CompletionStage;

/** A started execution. */
public interface RunHandle {
    /**
     * Completes once the run holds a slot or a queue place. A backend that cannot tell completes it
     * at once; callers then wait a short grace for a fast refusal (overload) in the outcome.
     */
    CompletionStage<Void> admitted();

    CompletionStage<ExecutionOutcome> outcome();

    /** Whether {@link #cancel()} actually stops the code and frees its sandbox. */
    boolean cancellable();

    /** Stops the run and frees its sandbox; the outcome becomes {@link ExecutionOutcome.Cancelled}. */
    void cancel();
}
