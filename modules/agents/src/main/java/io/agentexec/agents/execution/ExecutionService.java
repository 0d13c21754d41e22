package io.agentexec.agents.execution;

import io.agentexec.sandbox.model.ExecutionResult;
import java.util.concurrent.CompletionStage;

/**
 * How agents run code: the seam between this module and the cluster. {@link EngineExecutionService}
 * runs on this node's engine; a cluster-backed implementation sends the same call to the sandbox's
 * sharded entity (see this module's README, "What agents need from the cluster").
 */
public interface ExecutionService extends AutoCloseable {
    /** Completes with the engine's judged result; infrastructure failures complete as SANDBOX_ERROR results. */
    CompletionStage<ExecutionResult> execute(ExecutionCall call);

    /** The chat is over: its workspace may go. */
    void release(String sandboxKey);

    @Override
    void close();
}
