package io.agentexec.agents;

import java.util.Locale;

/** AG2's {@code human_input_mode}: when an agent asks a human before replying. */
public enum HumanInputMode {
    /** Before every reply; an empty answer means "use the auto reply", {@code exit} ends the chat. */
    ALWAYS,
    /** Only on a termination message or when max_consecutive_auto_reply is reached. */
    TERMINATE,
    /** Never: the chat ends on a termination message or when max_consecutive_auto_reply is reached. */
    NEVER;

    public static HumanInputMode parse(String text) {
        try {
            return valueOf(text.trim().toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new AgentConfigException("human_input_mode must be ALWAYS, TERMINATE or NEVER, got " + text);
        }
    }
}
