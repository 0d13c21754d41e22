package io.agentexec.cluster.api;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import io.agentexec.cluster.CborSerializable;
import io.agentexec.sandbox.model.ExecutionResult;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The one terminal outcome of an execution request. {@link Completed} wraps the engine's judged
 * result (user-code failures are results too); {@link SandboxLost} says the worker holding the
 * code went away mid-run; {@link Overloaded}, {@link Rejected} and {@link NotFound} say nothing ran.
 * One type on every path (the cluster's entities, the execution port's adapters, the gateway's transports,
 * the agents); a cancelled run is a Completed with verdict CANCELLED.
 * Persisted inside the entities' events: the type names below are in journals and never change
 * (this type was called {@code ExecutionOutcome} before; its events keep their class names).
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
@JsonSubTypes({
        @JsonSubTypes.Type(value = ExecutionOutcome.Completed.class, name = "completed"),
        @JsonSubTypes.Type(value = ExecutionOutcome.SandboxLost.class, name = "sandbox-lost"),
        @JsonSubTypes.Type(value = ExecutionOutcome.Overloaded.class, name = "overloaded"),
        @JsonSubTypes.Type(value = ExecutionOutcome.Rejected.class, name = "rejected"),
        @JsonSubTypes.Type(value = ExecutionOutcome.NotFound.class, name = "not-found")})
public sealed interface ExecutionOutcome extends CborSerializable {

    enum Status { COMPLETED, SANDBOX_LOST, OVERLOADED, REJECTED, NOT_FOUND }

    String executionKey();

    Status status();

    /** Tries on workers, in order; empty when nothing was accepted. */
    List<Attempt> attempts();

    /** True when this reply was stored earlier and is handed out again for a repeated idempotency key. */
    boolean replayed();

    ExecutionOutcome asReplayed();

    /** True when the user's code may have started more than once: announced by the attempts list. */
    default boolean mayHaveRunMoreThanOnce() {
        return attempts().stream().filter(Attempt::mayHaveRun).count() > 1;
    }

    /**
     * The engine's result. {@code workspaceLost} is set when the sandbox's earlier files are gone
     * (its worker died or it expired) and this execution ran in a fresh container.
     */
    record Completed(String executionKey, ExecutionResult result, List<Attempt> attempts,
                     Optional<String> workspaceLost, boolean replayed) implements ExecutionOutcome {
        public Completed {
            Objects.requireNonNull(executionKey, "executionKey");
            Objects.requireNonNull(result, "result");
            attempts = List.copyOf(attempts);
            Objects.requireNonNull(workspaceLost, "workspaceLost");
        }

        /** A run its caller cancelled: what either adapter records when a cancel beats the run's own end. */
        public static Completed cancelled(String executionKey, String backend) {
            return new Completed(executionKey, ExecutionResult.refused(io.agentexec.sandbox.model.Verdict.CANCELLED, 1,
                    "the execution was cancelled; its run was stopped", backend), List.of(), Optional.empty(), false);
        }

        @Override
        public Status status() {
            return Status.COMPLETED;
        }

        @Override
        public ExecutionOutcome asReplayed() {
            return new Completed(executionKey, result, attempts, workspaceLost, true);
        }

        /** What its caller should be told beside the result, if anything: the sandbox's earlier files are gone. */
        @com.fasterxml.jackson.annotation.JsonIgnore
        public Optional<String> note() {
            return workspaceLost.map(why -> "the sandbox's earlier workspace was lost (" + why + "); this ran in a fresh one");
        }
    }

    /**
     * The worker running the code was lost (or the sandbox's container vanished) during the run:
     * the code may or may not have run, and the sandbox's workspace is gone. The next request on
     * the sandbox runs in a fresh container on a healthy worker.
     */
    record SandboxLost(String executionKey, String reason, List<Attempt> attempts, boolean replayed)
            implements ExecutionOutcome {
        public SandboxLost {
            Objects.requireNonNull(executionKey, "executionKey");
            Objects.requireNonNull(reason, "reason");
            attempts = List.copyOf(attempts);
        }

        @Override
        public Status status() {
            return Status.SANDBOX_LOST;
        }

        @Override
        public ExecutionOutcome asReplayed() {
            return new SandboxLost(executionKey, reason, attempts, true);
        }
    }

    /** A refusal: nothing ran and nothing was recorded, so there are no attempts and nothing to replay. */
    sealed interface NothingRan extends ExecutionOutcome permits Overloaded, Rejected, NotFound {
        /** Why nothing ran, for humans. */
        String reason();

        @Override
        default List<Attempt> attempts() {
            return List.of();
        }

        @Override
        default boolean replayed() {
            return false;
        }

        @Override
        default ExecutionOutcome asReplayed() {
            return this;
        }
    }

    /** No worker had a free slot or queue place: refused at once, nothing ran, the key is free to reuse. */
    record Overloaded(String executionKey, String reason) implements NothingRan {
        public Overloaded {
            Objects.requireNonNull(executionKey, "executionKey");
            Objects.requireNonNull(reason, "reason");
        }

        @Override
        public Status status() {
            return Status.OVERLOADED;
        }
    }

    /** The request cannot run as given (a closed sandbox); nothing ran. */
    record Rejected(String executionKey, String reason) implements NothingRan {
        public Rejected {
            Objects.requireNonNull(executionKey, "executionKey");
            Objects.requireNonNull(reason, "reason");
        }

        @Override
        public Status status() {
            return Status.REJECTED;
        }
    }

    /**
     * No such sandbox (never created) or, for a watch or a follow, no execution of this key is known:
     * nothing ran. Never persisted: a later request may find what does not exist yet.
     */
    record NotFound(String executionKey, String reason) implements NothingRan {
        public NotFound {
            Objects.requireNonNull(executionKey, "executionKey");
            Objects.requireNonNull(reason, "reason");
        }

        @Override
        public Status status() {
            return Status.NOT_FOUND;
        }
    }

    /** Whether this is a run the caller cancelled (a Completed with verdict CANCELLED). */
    default boolean cancelled() {
        return this instanceof Completed c && c.result().verdict() == io.agentexec.sandbox.model.Verdict.CANCELLED;
    }
}
