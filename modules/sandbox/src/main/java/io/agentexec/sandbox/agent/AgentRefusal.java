package io.agentexec.sandbox.agent;

/** The agent answered a request with an error of the request's own making (bad path, missing file). */
public final class AgentRefusal extends RuntimeException {
    public AgentRefusal(String message) {
        super(message);
    }
}
