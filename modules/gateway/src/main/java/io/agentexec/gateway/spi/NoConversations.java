package io.agentexec.gateway.spi;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;

/** The conversation service of a node without the agents module: it says so (HTTP 501, gRPC UNIMPLEMENTED). */
public final class NoConversations implements ConversationService {
    private static final String WHY = "conversations need the agents module (modules/agents), which this node does not run";

    @Override
    public boolean available() {
        return false;
    }

    @Override
    public CompletionStage<Transcript> start(TenantId tenant, JsonNode config, String firstMessage) {
        return CompletableFuture.failedFuture(new UnsupportedOperationException(WHY));
    }

    @Override
    public CompletionStage<Optional<Transcript>> humanInput(TenantId tenant, String conversationId, String text) {
        return CompletableFuture.failedFuture(new UnsupportedOperationException(WHY));
    }

    @Override
    public CompletionStage<Optional<Transcript>> transcript(TenantId tenant, String conversationId) {
        return CompletableFuture.failedFuture(new UnsupportedOperationException(WHY));
    }

    @Override
    public Optional<AutoCloseable> follow(TenantId tenant, String conversationId, long afterSequence,
                                          Consumer<ConversationEvent> onEvent, Runnable onEnd) {
        return Optional.empty();
    }
}
