package io.agentexec.cluster.executors;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.port.Caller;
import io.agentexec.cluster.port.ExecutionIds;
import io.agentexec.cluster.port.ExecutionPort;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.model.ExecutionRequest;
import java.time.Instant;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.function.IntFunction;

/**
 * The plain way to make each run of a {@link SeedExecutors} call: through the execution port, in a fresh sandbox or
 * in one of the caller's, the first under the caller's id and each later one (an attempt, a test case) under an id
 * of its own (a new execution id naming the same sandbox), so that every run is readable by its id on any node.
 */
public final class PortRunner implements SeedExecutors.Runner {
    private final ExecutionPort port;
    private final Caller caller;
    private final Optional<String> sandboxId;
    private final IntFunction<String> ids;
    private final IntFunction<OutputListener> listeners;

    /**
     * @param firstId   the first run's id (the one the caller was given)
     * @param listeners the output listener of the {@code sequence}-th run
     */
    public PortRunner(ExecutionPort port, Caller caller, Optional<String> sandboxId, String firstId,
                      IntFunction<OutputListener> listeners) {
        this.port = port;
        this.caller = caller;
        this.sandboxId = sandboxId;
        this.ids = n -> n == 1 ? firstId : ExecutionIds.newId(Instant.now(), sandboxId);
        this.listeners = listeners;
    }

    @Override
    public String executionId(int sequence) {
        return ids.apply(sequence);
    }

    @Override
    public CompletionStage<ExecutionOutcome> run(int sequence, String executionId, ExecutionRequest request) {
        return port.start(caller, executionId, sandboxId, request, listeners.apply(sequence)).outcome();
    }
}
