package io.agentexec.agents.llm;

import java.util.List;
import java.util.Objects;

/**
 * One call to a model: the agent's system message and the chat as the agent sees it (its own
 * messages as "assistant", everyone else's as "user", as AG2 presents them).
 *
 * @param replyIndex how many messages this agent has already sent in this chat; the replay model answers by it
 */
public record LlmRequest(String conversationId, String agent, String systemMessage, List<Turn> messages,
                         int replyIndex) {

    public enum Role { USER, ASSISTANT }

    public record Turn(Role role, String content) {
        public Turn {
            Objects.requireNonNull(role, "role");
            Objects.requireNonNull(content, "content");
        }
    }

    public LlmRequest {
        Objects.requireNonNull(conversationId, "conversationId");
        Objects.requireNonNull(agent, "agent");
        Objects.requireNonNull(systemMessage, "systemMessage");
        messages = List.copyOf(messages);
    }
}
