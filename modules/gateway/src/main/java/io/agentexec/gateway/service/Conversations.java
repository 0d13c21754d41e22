package io.agentexec.gateway.service;

import com.fasterxml.jackson.databind.JsonNode;
import io.agentexec.gateway.spi.ConversationService;
import io.agentexec.gateway.spi.ConversationService.ConversationEvent;
import io.agentexec.gateway.spi.ConversationService.Transcript;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * AG2 conversations, for both transports: 501 on a node without the agents, the tenant's own conversations only
 * (another's is 404), no new one on a node shutting down.
 */
public final class Conversations {
    /** The start of a conversation as a transport read it: the agents' configuration and the first message. */
    public record Opening(JsonNode config, String message) {
        public Opening {
            Objects.requireNonNull(config, "config");
            Objects.requireNonNull(message, "message");
        }
    }

    /** A conversation found, ready to be followed: opening it delivers its events until it ends or is closed. */
    @FunctionalInterface
    public interface Feed {
        AutoCloseable open(Consumer<ConversationEvent> onEvent, Runnable onEnd);
    }

    private final ConversationService conversations;
    private final Draining draining;

    Conversations(ConversationService conversations, Draining draining) {
        this.conversations = conversations;
        this.draining = draining;
    }

    /** Whether this node runs conversations (the agents module is deployed). */
    public boolean available() {
        return conversations.available();
    }

    /** Starts the conversation a transport reads ({@code read}: its wire format, checked after the node's own checks). */
    public CompletionStage<Transcript> start(Requester who, Supplier<Opening> read) {
        draining.refuseNewWork();
        requireAvailable();
        Opening opening = read.get();
        return conversations.start(who.tenant().id(), opening.config(), opening.message());
    }

    public CompletionStage<Transcript> transcript(Requester who, String id) {
        requireAvailable();
        return conversations.transcript(who.tenant().id(), id).thenApply(found -> known(found, id));
    }

    /** The human's reply ({@code read}: the transport's reading of it) to a conversation waiting for one. */
    public CompletionStage<Transcript> humanInput(Requester who, String id, Supplier<String> read) {
        requireAvailable();
        String text = read.get();
        return conversations.humanInput(who.tenant().id(), id, text).thenApply(found -> known(found, id));
    }

    /**
     * The events of a conversation with a sequence above {@code after} ({@code after}: the transport's reading of
     * where its client is). Looked up first, without blocking: an unknown id is a 404, not a stream that never starts.
     */
    public CompletionStage<Feed> follow(Requester who, String id, LongSupplier after) {
        requireAvailable();
        long from = after.getAsLong();
        return conversations.transcript(who.tenant().id(), id).thenApply(found -> {
            known(found, id);
            return (onEvent, onEnd) -> known(conversations.follow(who.tenant().id(), id, from, onEvent, onEnd), id);
        });
    }

    /** The files the conversation's code wrote (its workspace is kept after it ends: see the transcript's workspace). */
    public CompletionStage<java.util.List<String>> files(Requester who, String id) {
        requireAvailable();
        return conversations.files(who.tenant().id(), id).thenApply(found -> known(found, id));
    }

    /** A file of the conversation's workspace, at most agentexec.gateway.http.max-file-read-bytes. */
    public CompletionStage<byte[]> readFile(Requester who, String id, String path, long maxBytes) {
        requireAvailable();
        RequestRules.workspacePath(path);
        return conversations.readFile(who.tenant().id(), id, path, maxBytes).thenApply(found -> found.orElseThrow(() ->
                ApiException.notFound("no file " + RequestRules.abbreviate(path) + " in the workspace of conversation "
                        + RequestRules.abbreviate(id) + " (never written, or the workspace was deleted or expired)")));
    }

    /** Deletes an ended conversation's workspace; 409 while it runs. */
    public CompletionStage<Transcript> delete(Requester who, String id) {
        requireAvailable();
        return conversations.delete(who.tenant().id(), id).handle((found, error) -> {
            if (error != null) {
                Throwable e = ApiException.unwrap(error);
                if (e instanceof IllegalStateException) {
                    throw new ApiException(409, "conflict", e.getMessage());
                }
                throw error instanceof java.util.concurrent.CompletionException c ? c
                        : new java.util.concurrent.CompletionException(error);
            }
            return known(found, id);
        });
    }

    private void requireAvailable() {
        if (!conversations.available()) {
            throw new ApiException(501, "not_implemented", "conversations need the agents module (modules/agents), "
                    + "which this node does not run");
        }
    }

    private static <T> T known(Optional<T> answer, String id) {
        return answer.orElseThrow(() -> ApiException.notFound("no conversation " + RequestRules.abbreviate(id)));
    }
}
