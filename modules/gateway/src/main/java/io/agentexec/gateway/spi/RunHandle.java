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

    /**
     * Completes once every gateway node can find the run by its id (through the backend's
     * {@link ExecutionDirectory}), or it will not be: an async request answers only then, so that its
     * id works on any node at once. At once where only this node finds it (the default).
     */
    default CompletionStage<Void> visible() {
        return java.util.concurrent.CompletableFuture.completedFuture(null);
    }

    /** Whether {@link #cancel()} actually stops the code and frees its sandbox. */
    boolean cancellable();

    /** Stops the run and frees its sandbox; the outcome becomes {@link ExecutionOutcome.Cancelled}. */
    void cancel();
}
