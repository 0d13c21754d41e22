package io.agentexec.agents;

import java.util.OptionalInt;

/** An agent bound to a runtime: AG2's ConversableAgent, of which there are two kinds here. */
public sealed interface Agent permits AssistantAgent, UserProxyAgent {
    AgentDefinition definition();

    AgentRuntime runtime();

    default String name() {
        return definition().name();
    }

    /** AG2's {@code initiate_chat(recipient, message=...)}: runs the chat to its end and returns the result. */
    default ChatResult initiateChat(Agent recipient, String message) {
        return runtime().initiateChat(this, recipient, message, OptionalInt.empty());
    }

    /** AG2's {@code initiate_chat(recipient, message=..., max_turns=N)}. */
    default ChatResult initiateChat(Agent recipient, String message, int maxTurns) {
        return runtime().initiateChat(this, recipient, message, OptionalInt.of(maxTurns));
    }
}
