package io.agentexec.gateway.spi;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;

/**
 * AG2 conversations (modules/agents): start one from the agents' configuration and a first
 * message, feed it human input, read its transcript, follow its events. Documents are JSON trees
 * because their shape belongs to the agents module; the gateway passes them through.
 */
public interface ConversationService {

    /** One thing that happened in a conversation (a message, a code result, a request for input, the end). */
    record ConversationEvent(String conversationId, long sequence, String type, JsonNode body) {
        public ConversationEvent {
            Objects.requireNonNull(conversationId, "conversationId");
            Objects.requireNonNull(type, "type");
            Objects.requireNonNull(body, "body");
        }
    }

    record Transcript(String conversationId, String status, List<ConversationEvent> events) {
        public Transcript {
            Objects.requireNonNull(conversationId, "conversationId");
            Objects.requireNonNull(status, "status");
            events = List.copyOf(events);
        }

        /** Over: ended (terminated normally) or failed (a model could not be reached). */
        public boolean ended() {
            return status.equals("ended") || status.equals("failed");
        }
    }

    /** Whether this node can run conversations at all (false when the agents module is not deployed). */
    boolean available();

    /** Fails with {@link io.agentexec.sandbox.model.InvalidRequestException} for a configuration that cannot run. */
    CompletionStage<Transcript> start(TenantId tenant, JsonNode config, String firstMessage);

    CompletionStage<Optional<Transcript>> humanInput(TenantId tenant, String conversationId, String text);

    CompletionStage<Optional<Transcript>> transcript(TenantId tenant, String conversationId);

    /**
     * Delivers events with a sequence above {@code afterSequence} as they happen, until the conversation
     * ends or the returned subscription is closed. Empty when the tenant has no such conversation.
     */
    Optional<AutoCloseable> follow(TenantId tenant, String conversationId, long afterSequence,
                                   Consumer<ConversationEvent> onEvent, Runnable onEnd);
}
