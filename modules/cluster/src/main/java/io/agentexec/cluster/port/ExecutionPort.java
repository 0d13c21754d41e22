package io.agentexec.cluster.port;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.model.ExecutionRequest;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletionStage;

/**
 * THE way to run code, for every caller (the gateway's transports, the agents' chats, the CLI's local exec): start a
 * run — in a fresh sandbox, or in one of the caller's sandboxes — and get a handle whose one outcome is an
 * {@link ExecutionOutcome}; find, follow and cancel runs by id; keep sandboxes with a workspace. Two adapters: the
 * cluster ({@link ClusterPort}: sharded, event-sourced, retried on healthy workers) and this JVM's engine
 * ({@link EnginePort}: a single node, no persistence).
 *
 * <p>Every call names its {@link Caller}: ids are the caller's own (a tenant's ids are scoped to it, so another
 * tenant's id is simply not found), its execution policy is checked (the edge brought limits within the ceilings;
 * what is still above one is refused), and a tenant's sandboxes count against its live-sandbox quota.
 * Never blocks the calling thread.
 */
public interface ExecutionPort extends AutoCloseable {

    // ---- runs

    /**
     * Starts a run.
     *
     * @param executionId the run's id, unique for the caller; a port that keeps runs beyond this node names them by
     *                    it, so that {@link #lookup} finds them from any node
     * @param listener    gets output while the code runs, where the port can stream it ({@link #streamsOutput})
     */
    RunHandle start(Caller caller, String executionId, Optional<String> sandboxId, ExecutionRequest request,
                    OutputListener listener);

    /** Whether output reaches a run's listener while the code runs (rather than only in the result). */
    boolean streamsOutput();

    /** A run of the caller's, wherever it was started; empty when the caller has no such run the port can see. */
    CompletionStage<Optional<ExecutionView>> lookup(Caller caller, String executionId);

    /**
     * Follows a run to its end: output reaches {@code listener} from now on while it runs (best-effort), then the
     * stage completes with its outcome ({@link ExecutionOutcome.NotFound} when there is none).
     */
    CompletionStage<ExecutionOutcome> follow(Caller caller, String executionId, OutputListener listener);

    /**
     * Asks to stop a run and answers what is known after, waiting up to {@code wait} for the stop to take effect.
     * Empty when the caller has no such run the port can see.
     */
    CompletionStage<Optional<ExecutionView>> cancel(Caller caller, String executionId, Duration wait);

    // ---- sandboxes

    /**
     * Creates the caller's sandbox {@code sandboxId} from {@code spec}, taking one of its live-sandbox slots first
     * (fails with {@link QuotaExceededException} when it holds its maximum). Creating an existing sandbox with the
     * same spec is a no-op. Fails with {@link io.agentexec.sandbox.model.InvalidRequestException} for a spec that
     * cannot be met (unknown language, image or options the policy refuses).
     */
    CompletionStage<SandboxInfo> createSandbox(Caller caller, String sandboxId, SandboxSpec spec);

    /** Empty when the caller has no such live sandbox. */
    CompletionStage<Optional<SandboxInfo>> sandbox(Caller caller, String sandboxId);

    /** Closes the sandbox and gives its slot back. Empty when the caller has no such live sandbox. */
    CompletionStage<Optional<SandboxInfo>> deleteSandbox(Caller caller, String sandboxId);

    /**
     * Writes a workspace file (relative path), in order with the sandbox's runs. Empty when the caller has no such
     * live sandbox; {@link SandboxFileError} for what the caller should see.
     */
    CompletionStage<Optional<Long>> writeFile(Caller caller, String sandboxId, String path, byte[] content);

    /** Reads a workspace file of at most {@code maxBytes}. Empty when the caller has no such live sandbox. */
    CompletionStage<Optional<byte[]>> readFile(Caller caller, String sandboxId, String path, long maxBytes);

    // ---- the machinery

    /** What /readyz and /metrics report. */
    CompletionStage<PortStatus> status();

    /** {@code cluster} or {@code engine}: for logs and /healthz. */
    String kind();

    /** Releases what the adapter holds (the engine adapter closes its engine; the cluster one leaves the node to its owner). */
    @Override
    void close();
}
