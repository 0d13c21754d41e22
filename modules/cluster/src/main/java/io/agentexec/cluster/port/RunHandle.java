package io.agentexec.cluster.port;

import io.agentexec.cluster.api.ExecutionOutcome;

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
     * Completes once every node can find the run by its id (through the port's
     * {@link ExecutionPort#lookup}), or it will not be: an async request answers only then, so that its
     * id works on any node at once. At once where only this node finds it (the default).
     */
    default CompletionStage<Void> visible() {
        return java.util.concurrent.CompletableFuture.completedFuture(null);
    }

    /** Whether {@link #cancel()} actually stops the code and frees its sandbox. */
    boolean cancellable();

    /** Stops the run; its outcome becomes a Completed with verdict CANCELLED (unless it ended first). */
    void cancel();
}
