package io.agentexec.sandbox.agent;

/** The sandbox's agent is unreachable, died, or broke the protocol: an infrastructure failure. */
public class AgentException extends RuntimeException {
    public AgentException(String message) {
        super(message);
    }

    public AgentException(String message, Throwable cause) {
        super(message, cause);
    }
}
