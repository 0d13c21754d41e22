package io.agentexec.agents;

/** An agent or chat that can never work as configured; the message names the offending key. */
public final class AgentConfigException extends IllegalArgumentException {
    public AgentConfigException(String message) {
        super(message);
    }
}
