package io.agentexec.node.conversations;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.agentexec.agents.AgentConfigException;
import io.agentexec.agents.ConversationFacade;
import io.agentexec.agents.ConversationStatus;
import io.agentexec.cluster.api.TenantScope;
import io.agentexec.gateway.spi.ConversationService;
import io.agentexec.gateway.spi.TenantId;
import io.agentexec.sandbox.model.InvalidRequestException;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;
import java.util.regex.Pattern;

/**
 * The gateway's {@link ConversationService} over the agents module ({@link ConversationFacade}): the node adapts one
 * to the other, so that the gateway never depends on the agents. Tenancy is in the
 * names, as for sandboxes: a tenant's conversation "conv-1" is the agents' chat "TENANT.conv-1", so
 * another tenant's id never reaches its entity (it is simply absent: 404).
 */
public final class AgentsConversations implements ConversationService {
    /** What a client may send as an id; tenant ids hold no '.', so TENANT.ID is unambiguous. */
    private static final Pattern EXTERNAL_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_-]{0,100}");

    private final ConversationFacade facade;

    public AgentsConversations(ConversationFacade facade) {
        this.facade = facade;
    }

    static String internalId(TenantId tenant, String conversationId) {
        return TenantScope.scoped(tenant.value(), conversationId);
    }

    @Override
    public boolean available() {
        return true;
    }

    @Override
    public CompletionStage<Transcript> start(TenantId tenant, JsonNode config, String firstMessage) {
        String id = "conv-" + UUID.randomUUID();
        return facade.start(internalId(tenant, id), config, firstMessage)
                .thenApply(v -> toTranscript(id, v))
                .exceptionallyCompose(AgentsConversations::badRequest);
    }

    @Override
    public CompletionStage<Optional<Transcript>> humanInput(TenantId tenant, String conversationId, String text) {
        if (!EXTERNAL_ID.matcher(conversationId).matches()) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        return facade.humanInput(internalId(tenant, conversationId), text)
                .thenApply(v -> v.map(view -> toTranscript(conversationId, view)))
                .exceptionallyCompose(AgentsConversations::badRequest);
    }

    @Override
    public CompletionStage<Optional<Transcript>> transcript(TenantId tenant, String conversationId) {
        if (!EXTERNAL_ID.matcher(conversationId).matches()) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        return facade.transcript(internalId(tenant, conversationId))
                .thenApply(v -> v.map(view -> toTranscript(conversationId, view)));
    }

    /** Callers look the conversation up first ({@link #transcript}); here only a malformed id is absent. */
    @Override
    public Optional<AutoCloseable> follow(TenantId tenant, String conversationId, long afterSequence,
                                          Consumer<ConversationEvent> onEvent, Runnable onEnd) {
        if (!EXTERNAL_ID.matcher(conversationId).matches()) {
            return Optional.empty();
        }
        return Optional.of(facade.follow(internalId(tenant, conversationId), afterSequence,
                e -> onEvent.accept(toEvent(conversationId, e)), onEnd));
    }

    @Override
    public CompletionStage<Optional<java.util.List<String>>> files(TenantId tenant, String conversationId) {
        if (!EXTERNAL_ID.matcher(conversationId).matches()) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        return facade.files(internalId(tenant, conversationId));
    }

    @Override
    public CompletionStage<Optional<byte[]>> readFile(TenantId tenant, String conversationId, String path, long maxBytes) {
        if (!EXTERNAL_ID.matcher(conversationId).matches()) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        return facade.readFile(internalId(tenant, conversationId), path, maxBytes);
    }

    @Override
    public CompletionStage<Optional<Transcript>> delete(TenantId tenant, String conversationId) {
        if (!EXTERNAL_ID.matcher(conversationId).matches()) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        return facade.delete(internalId(tenant, conversationId)).thenApply(v -> v.map(view -> new Transcript(
                conversationId, status(view.status()), view.events().stream().map(e -> toEvent(conversationId, e)).toList(),
                Optional.of("deleted: the workspace's sandbox and files are gone; the transcript stays"))));
    }

    private Transcript toTranscript(String externalId, ConversationFacade.View view) {
        return new Transcript(externalId, status(view.status()),
                view.events().stream().map(e -> toEvent(externalId, e)).toList(), Optional.of(workspaceWords(externalId)));
    }

    /** The workspace's retention, as the transcript states it. */
    private String workspaceWords(String externalId) {
        java.time.Duration retention = facade.workspaceRetention();
        return retention.isZero()
                ? "closed when the chat ends (agentexec.agents.workspace-retention = 0)"
                : "kept after the chat ends for " + retention.toSeconds() + " s (agentexec.agents.workspace-retention; "
                + "at most the sandboxes' idle timeout) or until DELETE /v1/conversations/" + externalId
                + "; files: GET /v1/conversations/" + externalId + "/files";
    }

    /** The agents' status in the gateway's words: running, awaiting_human, ended (terminated) or failed. */
    static String status(ConversationStatus status) {
        return switch (status) {
            case NONE, RUNNING -> "running";
            case AWAITING_HUMAN -> "awaiting_human";
            case TERMINATED -> "ended";
            case FAILED -> "failed";
        };
    }

    private static ConversationEvent toEvent(String externalId, ConversationFacade.Event e) {
        JsonNode body = e.body();
        if (body instanceof ObjectNode o && o.has("conversationId")) {
            // the chat's own id carries the tenant prefix; clients know it by the id they were given
            o = o.deepCopy();
            o.put("conversationId", externalId);
            body = o;
        }
        return new ConversationEvent(externalId, e.sequence(), e.type(), body);
    }

    private static <T> CompletionStage<T> badRequest(Throwable error) {
        Throwable e = error;
        while (e instanceof CompletionException && e.getCause() != null) {
            e = e.getCause();
        }
        if (e instanceof AgentConfigException) {
            return CompletableFuture.failedFuture(new InvalidRequestException(e.getMessage()));
        }
        return CompletableFuture.failedFuture(e);
    }
}
