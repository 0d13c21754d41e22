package io.agentexec.agents;

import java.util.List;
import java.util.Objects;

/**
 * AG2's ChatResult: the history, the summary (AG2's default summary method, the last message), the
 * tokens used, and why the chat ended.
 */
public record ChatResult(String conversationId, ConversationStatus status, List<ChatMessage> chatHistory,
                         List<ExecutionRecord> executions, String summary, TokenCount tokenUsage,
                         String terminationReason) {
    public ChatResult {
        Objects.requireNonNull(conversationId, "conversationId");
        Objects.requireNonNull(status, "status");
        chatHistory = List.copyOf(chatHistory);
        executions = List.copyOf(executions);
        Objects.requireNonNull(summary, "summary");
        Objects.requireNonNull(tokenUsage, "tokenUsage");
        Objects.requireNonNull(terminationReason, "terminationReason");
    }
}
