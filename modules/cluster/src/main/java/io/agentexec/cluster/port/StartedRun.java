package io.agentexec.cluster.port;

import io.agentexec.cluster.api.ExecutionOutcome;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * The part of a {@link RunHandle} both adapters share: admission and the outcome as futures the adapter completes.
 * What differs (visibility, cancelling) the adapter adds. Not cancellable unless the adapter says otherwise.
 */
abstract class StartedRun implements RunHandle {
    private final CompletionStage<Void> admission;
    private final CompletableFuture<ExecutionOutcome> outcome;

    StartedRun(CompletionStage<Void> admission, CompletableFuture<ExecutionOutcome> outcome) {
        this.admission = admission;
        this.outcome = outcome;
    }

    /** A run refused before it went anywhere: its outcome is already in (or about to be), nothing to cancel. */
    static RunHandle finished(CompletableFuture<ExecutionOutcome> outcome) {
        return new StartedRun(CompletableFuture.completedFuture(null), outcome) {
        };
    }

    @Override
    public final CompletionStage<Void> admitted() {
        return admission;
    }

    @Override
    public final CompletionStage<ExecutionOutcome> outcome() {
        return outcome;
    }

    @Override
    public boolean cancellable() {
        return false;
    }

    @Override
    public void cancel() {
    }
}
