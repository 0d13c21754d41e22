package io.agentexec.agents.llm;

/** A chat model. Calls block; the conversation entity runs them off its own thread. */
public interface LlmClient {
    LlmReply complete(LlmRequest request);
}
