package io.agentexec.agents.execution;

import io.agentexec.agents.ChatMessage;
import io.agentexec.agents.LastNMessages;
import io.agentexec.sandbox.blocks.CodeBlockExtractor;
import io.agentexec.sandbox.model.CodeBlock;
import java.util.List;

/**
 * AG2's code-execution reply: scan the last N messages, newest first, and take the code blocks of
 * the first message that has any. With {@code auto}, N is the number of messages received since
 * the executing agent last spoke.
 */
public final class CodeFinder {
    private CodeFinder() {
    }

    public static List<CodeBlock> find(List<ChatMessage> history, String agent, LastNMessages lastN) {
        int scan = lastN instanceof LastNMessages.Count c ? c.value() : sinceLastSpoke(history, agent);
        for (int i = 0; i < Math.min(scan, history.size()); i++) {
            ChatMessage message = history.get(history.size() - 1 - i);
            if (message.content().isEmpty()) {
                continue;
            }
            List<CodeBlock> blocks = CodeBlockExtractor.extract(message.content());
            if (!blocks.isEmpty()) {
                return blocks;
            }
        }
        return List.of();
    }

    static int sinceLastSpoke(List<ChatMessage> history, String agent) {
        int n = 0;
        for (int i = history.size() - 1; i >= 0 && !history.get(i).sender().equals(agent); i--) {
            n++;
        }
        return n;
    }
}
