package io.agentexec.agents;

/** Where a chat stands. */
public enum ConversationStatus {
    /** Never started. */
    NONE,
    /** An agent is composing its reply (a model call or a code execution may be under way). */
    RUNNING,
    /** A human reply is due; the chat waits, persisted, for input or the timeout. */
    AWAITING_HUMAN,
    /** Ended by a termination message, max turns, max consecutive auto replies, or "exit". */
    TERMINATED,
    /** Ended because a model could not be reached after retries, or a configuration could not work. */
    FAILED;

    public boolean isOver() {
        return this == TERMINATED || this == FAILED;
    }
}
