package io.agentexec.gateway.spi;

import io.agentexec.sandbox.agent.OutputListener;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * Executions as the backend keeps them beyond the gateway node that took them: what a gateway node
 * answers for an id it did not hand out itself (another node did, or it restarted since). Looked up
 * by tenant and id together, so another tenant's id is simply not found.
 */
public interface ExecutionDirectory {

    /** An execution some node started: still running (no outcome yet) or ended. */
    record Known(Optional<ExecutionOutcome> outcome) {
        public Known {
            Objects.requireNonNull(outcome, "outcome");
        }
    }

    /** Empty when the tenant has no such execution the backend can see. */
    CompletionStage<Optional<Known>> lookup(TenantId tenant, String executionId);

    /**
     * Follows the execution to its end: output reaches {@code listener} from now on while it runs
     * (best-effort), then the stage completes with its outcome ({@link ExecutionOutcome.NotFound}
     * when there is none). {@code maxRunTime} bounds one attempt of the run (the tenant's ceiling).
     */
    CompletionStage<ExecutionOutcome> follow(TenantId tenant, String executionId, Duration maxRunTime,
                                             OutputListener listener);

    /**
     * Asks to stop the execution and answers what is known after, waiting up to {@code wait} for the
     * stop to take effect. Empty when the tenant has no such execution the backend can see.
     */
    CompletionStage<Optional<Known>> cancel(TenantId tenant, String executionId, Duration wait);

    /** A backend without executions beyond this node (the engine backend, a single node). */
    static ExecutionDirectory none() {
        return new ExecutionDirectory() {
            @Override
            public CompletionStage<Optional<Known>> lookup(TenantId tenant, String executionId) {
                return CompletableFuture.completedFuture(Optional.empty());
            }

            @Override
            public CompletionStage<ExecutionOutcome> follow(TenantId tenant, String executionId, Duration maxRunTime,
                                                            OutputListener listener) {
                return CompletableFuture.completedFuture(new ExecutionOutcome.NotFound("no execution " + executionId));
            }

            @Override
            public CompletionStage<Optional<Known>> cancel(TenantId tenant, String executionId, Duration wait) {
                return CompletableFuture.completedFuture(Optional.empty());
            }
        };
    }
}
