package io.agentexec.agents;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Module;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;
import com.typesafe.config.Config;
import io.agentexec.agents.entity.ConversationEntity;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import org.apache.pekko.Done;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.pattern.StatusReply;
import org.apache.pekko.persistence.jdbc.query.javadsl.JdbcReadJournal;
import org.apache.pekko.persistence.query.EventEnvelope;
import org.apache.pekko.persistence.query.PersistenceQuery;
import org.apache.pekko.stream.KillSwitches;
import org.apache.pekko.stream.UniqueKillSwitch;
import org.apache.pekko.stream.javadsl.Keep;
import org.apache.pekko.stream.javadsl.Sink;
import org.apache.pekko.stream.javadsl.Source;

/**
 * Chats for a network front end (the gateway): start one from a JSON {@link ConversationSpec} and a
 * first message, post human input, read the transcript, follow its events. Never blocks: every call
 * answers with a stage. The caller chooses the ids (the gateway prefixes them with the tenant), so
 * nothing here knows about tenants; an id that was never started is simply absent.
 *
 * <p>Events are the chat entity's own journal events, numbered by their sequence number in the
 * journal: a client that reconnects with the last number it saw misses nothing and sees nothing twice.
 * Their bodies are a client's view ({@link ClientView}): the models by the names clients choose them
 * by, without the operator's endpoints, key variables or file paths.
 */
public final class ConversationFacade {
    /** Ids become persistence ids and execution keys: printable, bounded. */
    private static final Pattern ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._:-]{0,150}");
    private static final Map<Class<?>, String> EVENT_TYPES = eventTypes();

    /** One journal event of a chat, as JSON; {@code type} is the event's name (message-sent, terminated, ...). */
    public record Event(String conversationId, long sequence, String type, JsonNode body) {
        public Event {
            Objects.requireNonNull(conversationId, "conversationId");
            Objects.requireNonNull(type, "type");
            Objects.requireNonNull(body, "body");
        }

        /** The chat's last event. */
        public boolean terminal() {
            return type.equals("terminated") || type.equals("failed");
        }
    }

    /** A chat as a client reads it: where it stands, and every event so far. */
    public record View(String conversationId, ConversationStatus status, List<Event> events) {
        public View {
            Objects.requireNonNull(conversationId, "conversationId");
            Objects.requireNonNull(status, "status");
            events = List.copyOf(events);
        }
    }

    private final AgentRuntime runtime;
    private final ModelCatalog models;
    private final ClusterSharding sharding;
    private final JdbcReadJournal journal;
    private final ObjectMapper json = new ObjectMapper().registerModule(new Jdk8Module())
            .registerModule(new JavaTimeModule()).disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS);
    private final ClientView clientView;

    public ConversationFacade(AgentRuntime runtime, ModelCatalog models) {
        this.runtime = runtime;
        this.models = models;
        this.clientView = new ClientView(models, json);
        this.sharding = ClusterSharding.get(runtime.system());
        this.journal = PersistenceQuery.get(runtime.system())
                .getReadJournalFor(JdbcReadJournal.class, JdbcReadJournal.Identifier());
    }

    public static ConversationFacade create(AgentRuntime runtime, Config root) {
        return new ConversationFacade(runtime, ModelCatalog.fromConfig(root));
    }

    public ModelCatalog models() {
        return models;
    }

    /**
     * Starts the chat {@code conversationId}. Fails with {@link AgentConfigException} for a spec that
     * cannot run, a malformed id, or an id already used by another chat; repeating the same start is harmless.
     */
    public CompletionStage<View> start(String conversationId, JsonNode spec, String firstMessage) {
        ConversationSpec parsed;
        try {
            checkId(conversationId);
            Objects.requireNonNull(firstMessage, "message");
            if (firstMessage.isBlank()) {
                throw new AgentConfigException("the first message must not be blank");
            }
            parsed = ConversationSpec.fromJson(spec, models, runtime.settings(), runtime.seedExecutors());
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        return chat(conversationId).<Done>askWithStatus(r -> new ConversationEntity.Start(parsed.initiator(),
                        parsed.recipient(), firstMessage, parsed.maxTurns(), r), runtime.settings().askTimeout())
                .exceptionallyCompose(ConversationFacade::configError)
                .thenCompose(d -> view(conversationId)).thenApply(Optional::orElseThrow);
    }

    /** Human input for a chat that waits for it: text, "" for the auto reply, or "exit". Empty when there is no such chat. */
    public CompletionStage<Optional<View>> humanInput(String conversationId, String text) {
        Objects.requireNonNull(text, "text");
        return exists(conversationId).thenCompose(found -> {
            if (!found) {
                return CompletableFuture.completedFuture(Optional.<View>empty());
            }
            return chat(conversationId).<Done>askWithStatus(r -> new ConversationEntity.ProvideHumanInput(text, r),
                            runtime.settings().askTimeout())
                    .exceptionallyCompose(ConversationFacade::configError)
                    .thenCompose(d -> view(conversationId));
        });
    }

    /** Every event so far and the status; empty when there is no such chat. */
    public CompletionStage<Optional<View>> transcript(String conversationId) {
        return view(conversationId);
    }

    /**
     * The files the chat's code wrote in its workspace, in the order first written (each execution's filesWritten);
     * empty when there is no such chat.
     */
    public CompletionStage<Optional<List<String>>> files(String conversationId) {
        return entityTranscript(conversationId).thenApply(t -> t.map(transcript -> {
            java.util.LinkedHashSet<String> paths = new java.util.LinkedHashSet<>();
            transcript.executions().forEach(e -> paths.addAll(e.filesWritten()));
            return List.copyOf(paths);
        }));
    }

    /**
     * A file of the chat's workspace (kept after the chat ends for agentexec.agents.workspace-retention, or until
     * deleted), at most {@code maxBytes}; empty when there is no such chat or file.
     */
    public CompletionStage<Optional<byte[]>> readFile(String conversationId, String path, long maxBytes) {
        return workspaces(conversationId).thenCompose(w -> w.exists()
                ? runtime.pipeline().readFile(w.keys(), path, maxBytes)
                : CompletableFuture.completedFuture(Optional.<byte[]>empty()));
    }

    /**
     * Deletes an ended chat's workspace now (its sandboxes and files; the transcript stays readable). Empty when
     * there is no such chat; fails with {@link IllegalStateException} while it still runs.
     */
    public CompletionStage<Optional<View>> delete(String conversationId) {
        return workspaces(conversationId).thenCompose(w -> {
            if (!w.exists()) {
                return CompletableFuture.completedFuture(Optional.<View>empty());
            }
            if (!w.over()) {
                return CompletableFuture.failedFuture(new IllegalStateException("conversation " + conversationId
                        + " is still running: its workspace is deleted once it has ended"));
            }
            runtime.pipeline().releaseWorkspaces(w.keys());
            return view(conversationId);
        });
    }

    /** How long an ended chat's workspace is kept (agentexec.agents.workspace-retention). */
    public java.time.Duration workspaceRetention() {
        return runtime.settings().workspaceRetention();
    }

    private CompletionStage<ConversationEntity.Workspaces> workspaces(String conversationId) {
        if (!ID.matcher(conversationId).matches()) {
            return CompletableFuture.completedFuture(new ConversationEntity.Workspaces(false, false, List.of()));
        }
        return chat(conversationId).ask(ConversationEntity.GetWorkspaces::new, runtime.settings().askTimeout());
    }

    /** The entity's own transcript (messages, executions, tokens), for clients in this JVM. */
    public CompletionStage<Optional<ConversationEntity.Transcript>> entityTranscript(String conversationId) {
        if (!ID.matcher(conversationId).matches()) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        return chat(conversationId).<ConversationEntity.Transcript>ask(ConversationEntity.GetTranscript::new,
                        runtime.settings().askTimeout())
                .thenApply(t -> t.status() == ConversationStatus.NONE ? Optional.<ConversationEntity.Transcript>empty()
                        : Optional.of(t));
    }

    /**
     * Delivers the chat's events numbered above {@code afterSequence} as they are persisted (the
     * journal is polled), then calls {@code onEnd} after the terminal event; {@code close()} stops early.
     * Callers check that the chat exists first ({@link #transcript}): an unknown id only waits.
     */
    public AutoCloseable follow(String conversationId, long afterSequence, Consumer<Event> onEvent, Runnable onEnd) {
        checkId(conversationId);
        // from the start, so that the terminal event is always seen even when the client has it already
        UniqueKillSwitch kill = journal.eventsByPersistenceId(persistenceId(conversationId), 0L, Long.MAX_VALUE)
                .map(e -> toEvent(conversationId, e))
                .takeWhile(e -> !e.terminal(), true)
                .viaMat(KillSwitches.single(), Keep.right())
                .toMat(Sink.foreach(e -> {
                    if (e.sequence() > afterSequence) {
                        onEvent.accept(e);
                    }
                }), Keep.both())
                .mapMaterializedValue(pair -> {
                    pair.second().whenComplete((done, error) -> onEnd.run());
                    return pair.first();
                })
                .run(runtime.system());
        return kill::shutdown;
    }

    private CompletionStage<Boolean> exists(String conversationId) {
        return entityTranscript(conversationId).thenApply(Optional::isPresent);
    }

    private CompletionStage<Optional<View>> view(String conversationId) {
        return entityTranscript(conversationId).thenCompose(t -> {
            if (t.isEmpty()) {
                return CompletableFuture.completedFuture(Optional.<View>empty());
            }
            return journal.currentEventsByPersistenceId(persistenceId(conversationId), 0L, Long.MAX_VALUE)
                    .map(e -> toEvent(conversationId, e))
                    .runWith(Sink.seq(), runtime.system())
                    .thenApply(events -> Optional.of(new View(conversationId, statusOf(t.get().status(), events), events)));
        });
    }

    /** The entity answered first and the journal a moment later: the journal's end is the newer news. */
    private static ConversationStatus statusOf(ConversationStatus entity, List<Event> events) {
        if (!events.isEmpty() && events.get(events.size() - 1).terminal()) {
            return events.get(events.size() - 1).type().equals("failed") ? ConversationStatus.FAILED
                    : ConversationStatus.TERMINATED;
        }
        return entity;
    }

    private Event toEvent(String conversationId, EventEnvelope envelope) {
        Object payload = envelope.event();
        String type = EVENT_TYPES.getOrDefault(payload.getClass(), payload.getClass().getSimpleName());
        // what the client sent and the models' names: never the operator's endpoints, key variables or paths
        return new Event(conversationId, envelope.sequenceNr(), type, clientView.of(payload));
    }

    private EntityRef<ConversationEntity.Command> chat(String id) {
        return sharding.entityRefFor(ConversationEntity.TYPE_KEY, id);
    }

    private static String persistenceId(String conversationId) {
        return ConversationEntity.TYPE_KEY.name() + "|" + conversationId;
    }

    private static void checkId(String conversationId) {
        if (conversationId == null || !ID.matcher(conversationId).matches()) {
            throw new AgentConfigException("a conversation id is 1 to 151 letters, digits, '.', '_', ':' or '-', "
                    + "starting with a letter or digit");
        }
    }

    /** The entity's refusals (a used id, a chat not waiting for input) are the caller's errors. */
    private static <T> CompletionStage<T> configError(Throwable error) {
        Throwable e = error;
        while (e instanceof CompletionException && e.getCause() != null) {
            e = e.getCause();
        }
        if (e instanceof StatusReply.ErrorMessage m) {
            return CompletableFuture.failedFuture(new AgentConfigException(m.getMessage()));
        }
        return CompletableFuture.failedFuture(e);
    }

    private static Map<Class<?>, String> eventTypes() {
        Map<Class<?>, String> types = new HashMap<>();
        JsonSubTypes subTypes = ConversationEntity.Event.class.getAnnotation(JsonSubTypes.class);
        for (JsonSubTypes.Type t : subTypes.value()) {
            types.put(t.value(), t.name());
        }
        return Map.copyOf(types);
    }
}
