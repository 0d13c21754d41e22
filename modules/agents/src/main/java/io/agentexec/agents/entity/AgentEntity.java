package io.agentexec.agents.entity;

import io.agentexec.cluster.api.TenantScope;
import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import io.agentexec.agents.AgentDefinition;
import io.agentexec.agents.AgentsSerializable;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Collectors;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.pattern.StatusReply;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReply;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehaviorWithEnforcedReplies;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;

/**
 * One agent (AG2's AssistantAgent or UserProxyAgent): its definition and its retry history (RobustCodeExecutor's
 * execution_history of executeCodeWithRetry). Sharded by the agent's name, scoped to the tenant whose chat runs
 * it ({@link #entityId}); every change is an event. Its results cache and statistics are the tenant's, kept by the
 * shared executors ({@link io.agentexec.cluster.executors}); the events that kept them here before are still read
 * (and ignored) so that older journals recover.
 */
public final class AgentEntity
        extends EventSourcedBehaviorWithEnforcedReplies<AgentEntity.Command, AgentEntity.Event, AgentEntity.State> {

    public static final EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "Agent");

    /**
     * The entity of agent {@code name} of {@code tenant} ({@code TENANT.NAME}, as every tenant's id in the cluster):
     * two tenants' {@code code_executor} are two agents. Agents of in-process chats (no tenant) are their name.
     */
    public static String entityId(Optional<String> tenant, String name) {
        return tenant.map(t -> TenantScope.scoped(t, name)).orElse(name);
    }

    /** Bounds of what an agent remembers, from {@code agentexec.agents.agent}. */
    public record Limits(int retryHistory, java.time.Duration minBackoff, java.time.Duration maxBackoff) {
    }

    // ---- commands ----

    public sealed interface Command extends AgentsSerializable {
    }

    /** Creates the agent or replaces its definition (an AG2 script makes its agents anew on every run). */
    public record Define(AgentDefinition definition, ActorRef<StatusReply<Done>> replyTo) implements Command {
    }

    public record GetDefinition(ActorRef<StatusReply<AgentDefinition>> replyTo) implements Command {
    }

    public record RecordRetryAttempt(RetryAttempt attempt, ActorRef<Done> replyTo) implements Command {
    }

    public record GetRetryHistory(ActorRef<RetryHistory> replyTo) implements Command {
    }

    public record RetryHistory(List<RetryAttempt> attempts) implements AgentsSerializable {
        public RetryHistory {
            attempts = List.copyOf(attempts);
        }
    }

    // ---- events ----

    @JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
    @JsonSubTypes({
            @JsonSubTypes.Type(value = Defined.class, name = "defined"),
            @JsonSubTypes.Type(value = ExecutionRecorded.class, name = "execution-recorded"),
            @JsonSubTypes.Type(value = RetryAttemptRecorded.class, name = "retry-attempt-recorded")})
    public sealed interface Event extends AgentsSerializable {
    }

    public record Defined(AgentDefinition definition, Instant at) implements Event {
    }

    /** Written before the tenant's shared cache and statistics existed; read and ignored. */
    public record ExecutionRecorded(ExecutionSample sample, Optional<CachedResult> cacheEntry) implements Event {
    }

    public record RetryAttemptRecorded(RetryAttempt attempt) implements Event {
    }

    /** Part of {@link ExecutionRecorded}: kept so that older journals recover. */
    public record ExecutionSample(String profile, boolean success, long wallTimeMs, boolean cached, Instant at)
            implements AgentsSerializable {
        public ExecutionSample {
            Objects.requireNonNull(profile, "profile");
            Objects.requireNonNull(at, "at");
        }
    }

    /** One try of executeCodeWithRetry: which chat it was, whether its last execution succeeded. */
    public record RetryAttempt(int attempt, boolean success, String conversationId, String summary, Instant at)
            implements AgentsSerializable {
        public RetryAttempt {
            Objects.requireNonNull(conversationId, "conversationId");
            Objects.requireNonNull(summary, "summary");
            Objects.requireNonNull(at, "at");
        }
    }

    // ---- state ----

    public record State(Optional<AgentDefinition> definition, List<RetryAttempt> retries) {
        static State empty() {
            return new State(Optional.empty(), List.of());
        }
    }

    private final String name;
    private final Limits limits;

    private AgentEntity(String name, Limits limits) {
        super(PersistenceId.of(TYPE_KEY.name(), name),
                SupervisorStrategy.restartWithBackoff(limits.minBackoff(), limits.maxBackoff(), 0.2));
        this.name = name;
        this.limits = limits;
    }

    public static Behavior<Command> create(String name, Limits limits) {
        return new AgentEntity(name, limits);
    }

    @Override
    public State emptyState() {
        return State.empty();
    }

    @Override
    public CommandHandlerWithReply<Command, Event, State> commandHandler() {
        return newCommandHandlerWithReplyBuilder().forAnyState()
                .onCommand(Define.class, (state, cmd) -> Effect()
                        .persist(new Defined(cmd.definition(), Instant.now()))
                        .thenReply(cmd.replyTo(), s -> StatusReply.ack()))
                .onCommand(GetDefinition.class, (state, cmd) -> Effect().reply(cmd.replyTo(),
                        state.definition().map(StatusReply::success)
                                .orElseGet(() -> StatusReply.error("no agent named " + name + " is defined"))))
                .onCommand(RecordRetryAttempt.class, (state, cmd) -> Effect()
                        .persist(new RetryAttemptRecorded(cmd.attempt()))
                        .thenReply(cmd.replyTo(), s -> Done.getInstance()))
                .onCommand(GetRetryHistory.class, (state, cmd) -> Effect().reply(cmd.replyTo(),
                        new RetryHistory(state.retries())))
                .build();
    }

    @Override
    public EventHandler<State, Event> eventHandler() {
        return newEventHandlerBuilder().forAnyState()
                .onEvent(Defined.class, (state, e) -> new State(Optional.of(e.definition()), state.retries()))
                .onEvent(ExecutionRecorded.class, (state, e) -> state)
                .onEvent(RetryAttemptRecorded.class, (state, e) -> new State(state.definition(),
                        bounded(state.retries(), e.attempt(), limits.retryHistory())))
                .build();
    }

    private static <T> List<T> bounded(List<T> list, T added, int max) {
        List<T> next = new ArrayList<>(list);
        next.add(added);
        while (next.size() > max) {
            next.remove(0);
        }
        return List.copyOf(next);
    }
}
