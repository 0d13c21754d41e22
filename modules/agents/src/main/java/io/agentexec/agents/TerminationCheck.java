package io.agentexec.agents;

import java.util.Objects;

/**
 * AG2's {@code is_termination_msg}. The default ends a chat on a message that is {@code TERMINATE}
 * or ends with it (trailing white space ignored), which is what AG2's examples configure.
 */
public record TerminationCheck(String keyword, Match match) implements AgentsSerializable {
    public enum Match { EXACT, ENDS_WITH, CONTAINS }

    public TerminationCheck {
        Objects.requireNonNull(keyword, "keyword");
        Objects.requireNonNull(match, "match");
        if (keyword.isBlank()) {
            throw new AgentConfigException("is_termination_msg: the keyword must not be blank");
        }
    }

    public static TerminationCheck defaultCheck() {
        return new TerminationCheck("TERMINATE", Match.ENDS_WITH);
    }

    public boolean isTermination(String content) {
        String text = content.strip();
        return switch (match) {
            case EXACT -> text.equals(keyword);
            case ENDS_WITH -> text.endsWith(keyword);
            case CONTAINS -> text.contains(keyword);
        };
    }
}
