package io.agentexec.agents.llm;

import io.agentexec.agents.TokenCount;
import java.util.Objects;

/**
 * A model's answer.
 *
 * @param model    the label transcripts show: the model name, or {@code replay:FILE}
 * @param attempts HTTP calls it took (more than one after 429 or 5xx answers)
 */
public record LlmReply(String content, TokenCount tokens, String model, int attempts) {
    public LlmReply {
        Objects.requireNonNull(content, "content");
        Objects.requireNonNull(tokens, "tokens");
        Objects.requireNonNull(model, "model");
    }
}
