package io.agentexec.agents;

import java.time.Instant;
import java.util.Objects;
import java.util.Optional;

/**
 * One message of a chat, as its transcript shows it.
 *
 * @param index  0-based position in the chat
 * @param model  the model that wrote it ({@code replay:FILE} for the replay model); empty unless source is LLM
 */
public record ChatMessage(int index, String sender, String recipient, String content, Source source,
                          Instant timestamp, TokenCount tokens, Optional<String> model) implements AgentsSerializable {

    /** Where the content came from. */
    public enum Source { INITIAL, LLM, CODE_EXECUTION, HUMAN, DEFAULT_AUTO_REPLY }

    public ChatMessage {
        Objects.requireNonNull(sender, "sender");
        Objects.requireNonNull(recipient, "recipient");
        Objects.requireNonNull(content, "content");
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(timestamp, "timestamp");
        Objects.requireNonNull(tokens, "tokens");
        Objects.requireNonNull(model, "model");
    }
}
