package io.agentexec.gateway.spi;

import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.model.ExecutionRequest;
import java.util.Optional;

/** Runs code for a tenant: in a fresh sandbox, or in one of the tenant's sandboxes. Never blocks the caller. */
public interface ExecutionService {
    /**
     * @param executionId the id the gateway hands out for this run (unique, scoped to the tenant); a
     *                    backend that keeps executions beyond this node names them by it, so that
     *                    {@link ExecutionDirectory} finds them from any gateway node
     * @param listener    receives output while the code runs, where the backend can stream it; a backend
     *                    that cannot stream never calls it (the result still carries all output)
     */
    RunHandle start(TenantId tenant, String executionId, Optional<String> sandboxId, ExecutionRequest request,
                    OutputListener listener);

    /** Whether output reaches the listener while the code runs (rather than only in the result). */
    boolean streamsOutput();
}
