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

    /** @param workspace how long the chat's workspace (its files) is kept, in words; empty when not said */
    record Transcript(String conversationId, String status, List<ConversationEvent> events, Optional<String> workspace) {
        public Transcript {
            Objects.requireNonNull(conversationId, "conversationId");
            Objects.requireNonNull(status, "status");
            events = List.copyOf(events);
            Objects.requireNonNull(workspace, "workspace");
        }

        public Transcript(String conversationId, String status, List<ConversationEvent> events) {
            this(conversationId, status, events, Optional.empty());
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

    /** The files the conversation's code wrote in its workspace; empty when the tenant has no such conversation. */
    default CompletionStage<Optional<List<String>>> files(TenantId tenant, String conversationId) {
        return java.util.concurrent.CompletableFuture.failedFuture(new UnsupportedOperationException("files"));
    }

    /** A file of the conversation's workspace, at most {@code maxBytes}; empty when there is no such conversation or file. */
    default CompletionStage<Optional<byte[]>> readFile(TenantId tenant, String conversationId, String path, long maxBytes) {
        return java.util.concurrent.CompletableFuture.failedFuture(new UnsupportedOperationException("readFile"));
    }

    /**
     * Deletes an ended conversation's workspace (its files) now; empty when there is no such conversation. Fails with
     * {@link IllegalStateException} while it runs.
     */
    default CompletionStage<Optional<Transcript>> delete(TenantId tenant, String conversationId) {
        return java.util.concurrent.CompletableFuture.failedFuture(new UnsupportedOperationException("delete"));
    }
}
