package io.agentexec.agents.entity;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import io.agentexec.agents.AgentDefinition;
import io.agentexec.agents.AgentsSerializable;
import io.agentexec.agents.ChatMessage;
import io.agentexec.agents.ConversationStatus;
import io.agentexec.agents.ExecutionRecord;
import io.agentexec.agents.TokenCount;
import io.agentexec.agents.execution.CodeFinder;
import io.agentexec.agents.llm.LlmReply;
import io.agentexec.agents.llm.LlmRequest;
import io.agentexec.sandbox.model.CodeBlock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.pattern.StatusReply;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.RecoveryCompleted;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReply;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehaviorWithEnforcedReplies;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;
import org.apache.pekko.persistence.typed.javadsl.SignalHandler;

/**
 * One two-agent chat (AG2's initiate_chat), event-sourced: every message, execution request and
 * result, human input and the end are events. All decisions are taken in {@link Advance} from the
 * persisted state alone, so a chat recovered on another node after a crash continues at the step it
 * stopped: a model call is made again (its answer is only kept once persisted), an execution is
 * asked for again with the same idempotency key, a human-input wait resumes with its deadline.
 */
public final class ConversationEntity extends EventSourcedBehaviorWithEnforcedReplies<
        ConversationEntity.Command, ConversationEntity.Event, ConversationEntity.State> {

    public static final EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "Conversation");
    public static final String TAG_STARTED = "conversation-started";
    public static final String TAG_ENDED = "conversation-ended";
    /** AG2 prints this when a due human reply is empty; here also when it did not come in time. */
    public static final String NO_HUMAN_INPUT = "NO HUMAN INPUT RECEIVED.";

    // ---- commands ----

    public sealed interface Command {
    }

    /** Commands from outside this node: serializable. */
    public sealed interface ExternalCommand extends Command, AgentsSerializable {
    }

    public record Start(AgentDefinition initiator, AgentDefinition recipient, String message, OptionalInt maxTurns,
                        ActorRef<StatusReply<Done>> replyTo) implements ExternalCommand {
    }

    /** A human's reply: text to send, empty for "use the auto reply", or {@code exit}. */
    public record ProvideHumanInput(String text, ActorRef<StatusReply<Done>> replyTo) implements ExternalCommand {
    }

    public record GetTranscript(ActorRef<Transcript> replyTo) implements ExternalCommand {
    }

    /** The chat's workspaces (one per agent that runs code) and whether it is over: for its files and its deletion. */
    public record GetWorkspaces(ActorRef<Workspaces> replyTo) implements ExternalCommand {
    }

    /** @param keys the workspace keys (chat/agent/work_dir); empty before the chat started */
    public record Workspaces(boolean exists, boolean over, List<String> keys) implements AgentsSerializable {
        public Workspaces {
            keys = List.copyOf(keys);
        }
    }

    /** Wakes the entity (after a node restart) so that an unfinished chat continues. */
    public record Wake() implements ExternalCommand {
    }

    /** Sent to itself after every change: take the next step. */
    private record Advance() implements Command {
    }

    private record LlmAnswered(int forIndex, LlmReply reply) implements Command {
    }

    private record LlmFailed(int forIndex, String reason) implements Command {
    }

    private record ExecutionFinished(String executionKey, ExecutionRecord record, String content) implements Command {
    }

    private record HumanInputDeadline(int forIndex) implements Command {
    }

    // ---- events ----

    @JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
    @JsonSubTypes({
            @JsonSubTypes.Type(value = ChatStarted.class, name = "chat-started"),
            @JsonSubTypes.Type(value = MessageSent.class, name = "message-sent"),
            @JsonSubTypes.Type(value = ExecutionRequested.class, name = "execution-requested"),
            @JsonSubTypes.Type(value = ExecutionCompleted.class, name = "execution-completed"),
            @JsonSubTypes.Type(value = HumanInputRequested.class, name = "human-input-requested"),
            @JsonSubTypes.Type(value = HumanInputReceived.class, name = "human-input-received"),
            @JsonSubTypes.Type(value = HumanInputTimedOut.class, name = "human-input-timed-out"),
            @JsonSubTypes.Type(value = Terminated.class, name = "terminated"),
            @JsonSubTypes.Type(value = ChatFailed.class, name = "failed")})
    public sealed interface Event extends AgentsSerializable {
    }

    public record ChatStarted(String conversationId, AgentDefinition initiator, AgentDefinition recipient,
                              OptionalInt maxTurns, Instant at) implements Event {
    }

    /** @param autoReply the sender replied without a human (counts towards max_consecutive_auto_reply) */
    public record MessageSent(ChatMessage message, boolean autoReply) implements Event {
    }

    public record ExecutionRequested(String executionKey, String agent, int forIndex, List<CodeBlock> blocks,
                                     String profile, Instant at) implements Event {
    }

    public record ExecutionCompleted(ExecutionRecord record) implements Event {
    }

    public record HumanInputRequested(String agent, String prompt, int forIndex, boolean terminateOnEmpty,
                                      Instant deadline) implements Event {
    }

    public record HumanInputReceived(String agent, String text, Instant at) implements Event {
    }

    public record HumanInputTimedOut(String agent, Instant at) implements Event {
    }

    public record Terminated(String reason, Instant at) implements Event {
    }

    public record ChatFailed(String reason, Instant at) implements Event {
    }

    // ---- state ----

    /** A due human reply: who, the prompt AG2 shows, and when the wait ends. */
    public record PendingHumanInput(String agent, String prompt, int forIndex, boolean terminateOnEmpty,
                                    Instant deadline) implements AgentsSerializable {
    }

    /** A notice shown between messages, such as AG2's NO HUMAN INPUT RECEIVED. */
    public record Notice(int afterIndex, String text, Instant at) implements AgentsSerializable {
    }

    public record State(String conversationId, ConversationStatus status, Optional<AgentDefinition> initiator,
                        Optional<AgentDefinition> recipient, OptionalInt maxTurns, List<ChatMessage> messages,
                        List<ExecutionRecord> executions, Map<String, Integer> autoReplies,
                        Optional<ExecutionRequested> pendingExecution, Optional<PendingHumanInput> pendingHuman,
                        OptionalInt autoApprovedFor, List<Notice> notices, String endReason) {

        static State empty(String id) {
            return new State(id, ConversationStatus.NONE, Optional.empty(), Optional.empty(), OptionalInt.empty(),
                    List.of(), List.of(), Map.of(), Optional.empty(), Optional.empty(), OptionalInt.empty(), List.of(), "");
        }

        State with(ConversationStatus s) {
            return new State(conversationId, s, initiator, recipient, maxTurns, messages, executions, autoReplies,
                    pendingExecution, pendingHuman, autoApprovedFor, notices, endReason);
        }

        State ended(ConversationStatus s, String reason) {
            return new State(conversationId, s, initiator, recipient, maxTurns, messages, executions, autoReplies,
                    Optional.empty(), Optional.empty(), OptionalInt.empty(), notices, reason);
        }

        AgentDefinition agent(String name) {
            if (initiator.orElseThrow().name().equals(name)) {
                return initiator.get();
            }
            return recipient.orElseThrow();
        }

        ChatMessage last() {
            return messages.get(messages.size() - 1);
        }

        int sentBy(String agent) {
            return (int) messages.stream().filter(m -> m.sender().equals(agent)).count();
        }

        TokenCount tokens() {
            return messages.stream().map(ChatMessage::tokens).reduce(TokenCount.NONE, TokenCount::plus);
        }

        Transcript view() {
            return new Transcript(conversationId, status, initiator.map(AgentDefinition::name).orElse(""),
                    recipient.map(AgentDefinition::name).orElse(""), messages, executions, pendingHuman, notices,
                    tokens(), endReason);
        }
    }

    /** What a client reads back: the messages in order with timestamps and tokens, executions, the wait if any. */
    public record Transcript(String conversationId, ConversationStatus status, String initiator, String recipient,
                             List<ChatMessage> messages, List<ExecutionRecord> executions,
                             Optional<PendingHumanInput> pendingHuman, List<Notice> notices, TokenCount tokenUsage,
                             String endReason) implements AgentsSerializable {
        public Transcript {
            messages = List.copyOf(messages);
            executions = List.copyOf(executions);
            notices = List.copyOf(notices);
        }
    }

    // ---- behaviour ----

    private final String conversationId;
    private final ActorContext<Command> context;
    private final TimerScheduler<Command> timers;
    private final ConversationDependencies deps;
    /** The step under way on this incarnation; not persisted, so a recovered entity starts it again. */
    private Optional<String> inFlight = Optional.empty();
    /** Whether this incarnation has released the ended chat's workspaces. */
    private boolean released;

    private ConversationEntity(String conversationId, ActorContext<Command> context, TimerScheduler<Command> timers,
                               ConversationDependencies deps) {
        super(PersistenceId.of(TYPE_KEY.name(), conversationId),
                SupervisorStrategy.restartWithBackoff(deps.minBackoff(), deps.maxBackoff(), 0.2));
        this.conversationId = conversationId;
        this.context = context;
        this.timers = timers;
        this.deps = deps;
    }

    public static Behavior<Command> create(String conversationId, ConversationDependencies deps) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new ConversationEntity(conversationId, ctx, timers, deps)));
    }

    @Override
    public State emptyState() {
        return State.empty(conversationId);
    }

    @Override
    public Set<String> tagsFor(Event event) {
        if (event instanceof ChatStarted) {
            return Set.of(TAG_STARTED);
        }
        if (event instanceof Terminated || event instanceof ChatFailed) {
            return Set.of(TAG_ENDED);
        }
        return Set.of();
    }

    @Override
    public SignalHandler<State> signalHandler() {
        return newSignalHandlerBuilder()
                .onSignal(RecoveryCompleted.instance(), state -> {
                    if (state.status() == ConversationStatus.RUNNING || state.status() == ConversationStatus.AWAITING_HUMAN) {
                        context.getLog().info("conversation {} recovered with {} message(s); continuing",
                                conversationId, state.messages().size());
                        context.getSelf().tell(new Advance());
                    }
                })
                .build();
    }

    @Override
    public CommandHandlerWithReply<Command, Event, State> commandHandler() {
        return newCommandHandlerWithReplyBuilder().forAnyState()
                .onCommand(Start.class, this::onStart)
                .onCommand(ProvideHumanInput.class, this::onHumanInput)
                .onCommand(GetTranscript.class, (state, cmd) -> Effect().reply(cmd.replyTo(), state.view()))
                .onCommand(GetWorkspaces.class, (state, cmd) -> {
                    List<AgentDefinition> agents = new ArrayList<>();
                    state.initiator().ifPresent(agents::add);
                    state.recipient().ifPresent(agents::add);
                    return Effect().reply(cmd.replyTo(), new Workspaces(state.status() != ConversationStatus.NONE,
                            state.status().isOver(), ExecutionPipeline.workspaces(conversationId, agents)));
                })
                .onCommand(Wake.class, (state, cmd) -> Effect().none().thenNoReply())
                .onCommand(Advance.class, this::onAdvance)
                .onCommand(LlmAnswered.class, this::onLlmAnswered)
                .onCommand(LlmFailed.class, (state, cmd) -> {
                    inFlight = Optional.empty();
                    if (state.status().isOver() || cmd.forIndex() != state.messages().size() - 1) {
                        return Effect().none().thenNoReply();
                    }
                    return persistAndAdvance(List.of(new ChatFailed(cmd.reason(), Instant.now())));
                })
                .onCommand(ExecutionFinished.class, this::onExecutionFinished)
                .onCommand(HumanInputDeadline.class, this::onHumanDeadline)
                .build();
    }

    private ReplyEffect<Event, State> onStart(State state, Start cmd) {
        if (state.status() != ConversationStatus.NONE) {
            // a repeated Start (a client retrying) is fine when it asks for the same chat
            boolean same = state.initiator().map(AgentDefinition::name).equals(Optional.of(cmd.initiator().name()))
                    && state.recipient().map(AgentDefinition::name).equals(Optional.of(cmd.recipient().name()))
                    && !state.messages().isEmpty() && state.messages().get(0).content().equals(cmd.message());
            return Effect().reply(cmd.replyTo(), same ? StatusReply.ack()
                    : StatusReply.error("conversation " + conversationId + " already exists"));
        }
        if (cmd.initiator().name().equals(cmd.recipient().name())) {
            return Effect().reply(cmd.replyTo(), StatusReply.error("an agent cannot chat with itself: " + cmd.initiator().name()));
        }
        if (cmd.maxTurns().isPresent() && cmd.maxTurns().getAsInt() < 1) {
            return Effect().reply(cmd.replyTo(), StatusReply.error("max_turns must be at least 1, got " + cmd.maxTurns().getAsInt()));
        }
        Instant now = Instant.now();
        ChatMessage first = new ChatMessage(0, cmd.initiator().name(), cmd.recipient().name(), cmd.message(),
                ChatMessage.Source.INITIAL, now, TokenCount.NONE, Optional.empty());
        return Effect().persist(List.of(
                        new ChatStarted(conversationId, cmd.initiator(), cmd.recipient(), cmd.maxTurns(), now),
                        new MessageSent(first, false)))
                .thenRun(s -> context.getSelf().tell(new Advance()))
                .thenReply(cmd.replyTo(), s -> StatusReply.ack());
    }

    private ReplyEffect<Event, State> onHumanInput(State state, ProvideHumanInput cmd) {
        if (state.pendingHuman().isEmpty()) {
            return Effect().reply(cmd.replyTo(), StatusReply.error("conversation " + conversationId
                    + " is not waiting for human input (status " + state.status() + ")"));
        }
        PendingHumanInput pending = state.pendingHuman().get();
        timers.cancel(pending.forIndex());
        Instant now = Instant.now();
        List<Event> events = new ArrayList<>();
        events.add(new HumanInputReceived(pending.agent(), cmd.text(), now));
        String text = cmd.text();
        if (text.equals("exit")) {
            events.add(new Terminated(pending.agent() + " (human) typed exit", now));
        } else if (text.isEmpty()) {
            if (pending.terminateOnEmpty()) {
                events.add(new Terminated("termination message, and no human reply to " + pending.agent(), now));
            }
        } else {
            AgentDefinition agent = state.agent(pending.agent());
            String other = other(state, agent.name());
            events.add(new MessageSent(new ChatMessage(state.messages().size(), agent.name(), other, text,
                    ChatMessage.Source.HUMAN, now, TokenCount.NONE, Optional.empty()), false));
        }
        return Effect().persist(events)
                .thenRun(s -> context.getSelf().tell(new Advance()))
                .thenReply(cmd.replyTo(), s -> StatusReply.ack());
    }

    private ReplyEffect<Event, State> onHumanDeadline(State state, HumanInputDeadline cmd) {
        if (state.pendingHuman().isEmpty() || state.pendingHuman().get().forIndex() != cmd.forIndex()) {
            return Effect().none().thenNoReply();
        }
        PendingHumanInput pending = state.pendingHuman().get();
        Instant now = Instant.now();
        List<Event> events = new ArrayList<>();
        events.add(new HumanInputTimedOut(pending.agent(), now));
        if (pending.terminateOnEmpty()) {
            events.add(new Terminated("termination message, and no human reply to " + pending.agent()
                    + " before the timeout", now));
        }
        return persistAndAdvance(events);
    }

    private ReplyEffect<Event, State> persistAndAdvance(List<Event> events) {
        return Effect().persist(events).thenRun(s -> context.getSelf().tell(new Advance())).thenNoReply();
    }

    // ---- the next step, decided from the persisted state only ----

    private ReplyEffect<Event, State> onAdvance(State state, Advance cmd) {
        if (state.status().isOver()) {
            releaseWorkspaces(state);
            return Effect().none().thenNoReply();
        }
        if (state.status() == ConversationStatus.NONE) {
            return Effect().none().thenNoReply();
        }
        if (state.pendingHuman().isPresent()) {
            PendingHumanInput pending = state.pendingHuman().get();
            Duration left = Duration.between(Instant.now(), pending.deadline());
            timers.startSingleTimer(pending.forIndex(), new HumanInputDeadline(pending.forIndex()),
                    left.isNegative() ? Duration.ZERO : left);
            return Effect().none().thenNoReply();
        }
        if (state.pendingExecution().isPresent()) {
            startExecution(state, state.pendingExecution().get());
            return Effect().none().thenNoReply();
        }
        ChatMessage last = state.last();
        AgentDefinition replier = state.agent(other(state, last.sender()));
        Instant now = Instant.now();

        if (replier.name().equals(state.initiator().orElseThrow().name()) && state.maxTurns().isPresent()
                && state.sentBy(replier.name()) >= state.maxTurns().getAsInt()) {
            return persistAndAdvance(List.of(new Terminated("max_turns (" + state.maxTurns().getAsInt() + ") reached", now)));
        }
        boolean approved = state.autoApprovedFor().isPresent() && state.autoApprovedFor().getAsInt() == last.index();
        if (!approved) {
            Optional<Event> gate = humanGate(state, replier, last, now);
            if (gate.isPresent()) {
                return persistAndAdvance(List.of(gate.get()));
            }
        }
        if (replier.codeExecution().isPresent()) {
            List<CodeBlock> blocks = CodeFinder.find(state.messages(), replier.name(),
                    replier.codeExecution().get().lastNMessages());
            if (!blocks.isEmpty()) {
                int forIndex = state.messages().size();
                return persistAndAdvance(List.of(new ExecutionRequested(conversationId + "#" + forIndex, replier.name(),
                        forIndex, blocks, replier.executorOptions().resourceProfile(), now)));
            }
        }
        if (replier.llmConfig().isPresent()) {
            callModel(state, replier);
            return Effect().none().thenNoReply();
        }
        ChatMessage reply = new ChatMessage(state.messages().size(), replier.name(), last.sender(),
                replier.defaultAutoReply(), ChatMessage.Source.DEFAULT_AUTO_REPLY, now, TokenCount.NONE, Optional.empty());
        return persistAndAdvance(List.of(new MessageSent(reply, true)));
    }

    /**
     * AG2's check_termination_and_human_reply: end the chat, ask a human, or let the auto reply go
     * (empty). The counter is the replier's consecutive auto replies to the other agent.
     */
    private Optional<Event> humanGate(State state, AgentDefinition replier, ChatMessage last, Instant now) {
        boolean termination = replier.terminationCheck().isTermination(last.content());
        int auto = state.autoReplies().getOrDefault(replier.name(), 0);
        boolean limitReached = auto >= replier.maxConsecutiveAutoReply();
        Instant deadline = now.plus(replier.humanInputTimeout());
        String sender = last.sender();
        return switch (replier.humanInputMode()) {
            case ALWAYS -> Optional.of(new HumanInputRequested(replier.name(), "Replying as " + replier.name()
                    + ". Provide feedback to " + sender + ". Press enter to skip and use auto-reply, or type 'exit' "
                    + "to end the conversation: ", last.index(), termination, deadline));
            case NEVER -> limitReached
                    ? Optional.of(new Terminated("max_consecutive_auto_reply (" + replier.maxConsecutiveAutoReply()
                    + ") reached by " + replier.name(), now))
                    : termination ? Optional.of(new Terminated("termination message from " + sender, now)) : Optional.empty();
            case TERMINATE -> limitReached || termination
                    ? Optional.of(new HumanInputRequested(replier.name(), termination
                    ? "Please give feedback to " + sender + ". Press enter or type 'exit' to stop the conversation: "
                    : "Please give feedback to " + sender + ". Press enter to skip and use auto-reply, or type 'exit' "
                    + "to stop the conversation: ", last.index(), termination, deadline))
                    : Optional.empty();
        };
    }

    private void callModel(State state, AgentDefinition agent) {
        int forIndex = state.messages().size() - 1;
        String step = "llm#" + forIndex;
        if (inFlight.equals(Optional.of(step))) {
            return;
        }
        inFlight = Optional.of(step);
        List<LlmRequest.Turn> turns = state.messages().stream()
                .map(m -> new LlmRequest.Turn(m.sender().equals(agent.name()) ? LlmRequest.Role.ASSISTANT
                        : LlmRequest.Role.USER, m.content()))
                .toList();
        LlmRequest request = new LlmRequest(conversationId, agent.name(), agent.systemMessage(), turns,
                state.sentBy(agent.name()));
        CompletionStage<LlmReply> call = CompletableFuture.supplyAsync(
                () -> deps.llm().clientFor(agent.llmConfig().orElseThrow()).complete(request), deps.blocking());
        context.pipeToSelf(call, (reply, error) -> error == null ? new LlmAnswered(forIndex, reply)
                : new LlmFailed(forIndex, "model call by " + agent.name() + " failed: " + rootMessage(error)));
    }

    private ReplyEffect<Event, State> onLlmAnswered(State state, LlmAnswered cmd) {
        inFlight = Optional.empty();
        if (state.status().isOver() || cmd.forIndex() != state.messages().size() - 1) {
            return Effect().none().thenNoReply();
        }
        ChatMessage last = state.last();
        String replier = other(state, last.sender());
        ChatMessage reply = new ChatMessage(state.messages().size(), replier, last.sender(), cmd.reply().content(),
                ChatMessage.Source.LLM, Instant.now(), cmd.reply().tokens(), Optional.of(cmd.reply().model()));
        return persistAndAdvance(List.of(new MessageSent(reply, true)));
    }

    /**
     * The chat is over (its end event is persisted): its agents' sandboxes are closed and their
     * containers removed at once rather than at their idle timeout. Once per incarnation; releasing
     * again is harmless. A node that dies between the end event and this leaves them to the idle timeout.
     */
    private void releaseWorkspaces(State state) {
        if (released) {
            return;
        }
        released = true;
        List<AgentDefinition> agents = new ArrayList<>();
        state.initiator().ifPresent(agents::add);
        state.recipient().ifPresent(agents::add);
        try {
            // kept for its files (GET /v1/conversations/{id}/files) until the retention ends or the chat is deleted
            Duration retention = deps.workspaceRetention();
            if (retention.isZero()) {
                deps.pipeline().release(conversationId, agents);
            } else {
                ExecutionPipeline pipeline = deps.pipeline();
                java.util.concurrent.CompletableFuture.delayedExecutor(retention.toMillis(),
                        java.util.concurrent.TimeUnit.MILLISECONDS).execute(() -> pipeline.release(conversationId, agents));
            }
        } catch (RuntimeException e) {
            context.getLog().warn("releasing the workspaces of conversation {} failed: {}", conversationId, e.toString());
        }
    }

    private void startExecution(State state, ExecutionRequested requested) {
        String step = "exec#" + requested.executionKey();
        if (inFlight.equals(Optional.of(step))) {
            return;
        }
        inFlight = Optional.of(step);
        AgentDefinition agent = state.agent(requested.agent());
        CompletionStage<ExecutionPipeline.Outcome> run;
        try {
            run = deps.pipeline().run(agent, conversationId, requested.executionKey(), requested.blocks(),
                    requested.profile());
        } catch (RuntimeException e) {
            run = CompletableFuture.failedFuture(e);
        }
        context.pipeToSelf(run, (outcome, error) -> {
            ExecutionPipeline.Outcome o = error == null ? outcome
                    : ExecutionPipeline.failed(agent, requested.executionKey(), requested.profile(), rootMessage(error));
            return new ExecutionFinished(requested.executionKey(), o.record(), o.content());
        });
    }

    private ReplyEffect<Event, State> onExecutionFinished(State state, ExecutionFinished cmd) {
        inFlight = Optional.empty();
        if (state.pendingExecution().isEmpty() || !state.pendingExecution().get().executionKey().equals(cmd.executionKey())) {
            return Effect().none().thenNoReply();
        }
        ExecutionRequested requested = state.pendingExecution().get();
        String recipient = other(state, requested.agent());
        ChatMessage reply = new ChatMessage(state.messages().size(), requested.agent(), recipient, cmd.content(),
                ChatMessage.Source.CODE_EXECUTION, Instant.now(), TokenCount.NONE, Optional.empty());
        return persistAndAdvance(List.of(new ExecutionCompleted(cmd.record()), new MessageSent(reply, true)));
    }

    private static String other(State state, String agent) {
        String initiator = state.initiator().orElseThrow().name();
        return initiator.equals(agent) ? state.recipient().orElseThrow().name() : initiator;
    }

    private static String rootMessage(Throwable error) {
        Throwable t = error;
        while (t instanceof java.util.concurrent.CompletionException && t.getCause() != null) {
            t = t.getCause();
        }
        return t.getMessage() == null ? t.toString() : t.getMessage();
    }

    // ---- events change the state ----

    @Override
    public EventHandler<State, Event> eventHandler() {
        return newEventHandlerBuilder().forAnyState()
                .onEvent(ChatStarted.class, (s, e) -> new State(conversationId, ConversationStatus.RUNNING,
                        Optional.of(e.initiator()), Optional.of(e.recipient()), e.maxTurns(), List.of(), List.of(),
                        Map.of(), Optional.empty(), Optional.empty(), OptionalInt.empty(), List.of(), ""))
                .onEvent(MessageSent.class, (s, e) -> {
                    List<ChatMessage> messages = new ArrayList<>(s.messages());
                    messages.add(e.message());
                    Map<String, Integer> counters = new HashMap<>(s.autoReplies());
                    if (e.message().source() != ChatMessage.Source.INITIAL) {
                        // a human reply resets the sender's run of auto replies, as in AG2
                        counters.put(e.message().sender(),
                                e.autoReply() ? counters.getOrDefault(e.message().sender(), 0) + 1 : 0);
                    }
                    return new State(conversationId, s.status(), s.initiator(), s.recipient(), s.maxTurns(),
                            List.copyOf(messages), s.executions(), Map.copyOf(counters), Optional.empty(),
                            s.pendingHuman(), OptionalInt.empty(), s.notices(), s.endReason());
                })
                .onEvent(ExecutionRequested.class, (s, e) -> new State(conversationId, s.status(), s.initiator(),
                        s.recipient(), s.maxTurns(), s.messages(), s.executions(), s.autoReplies(), Optional.of(e),
                        s.pendingHuman(), s.autoApprovedFor(), s.notices(), s.endReason()))
                .onEvent(ExecutionCompleted.class, (s, e) -> {
                    List<ExecutionRecord> executions = new ArrayList<>(s.executions());
                    executions.add(e.record());
                    return new State(conversationId, s.status(), s.initiator(), s.recipient(), s.maxTurns(),
                            s.messages(), List.copyOf(executions), s.autoReplies(), s.pendingExecution(),
                            s.pendingHuman(), s.autoApprovedFor(), s.notices(), s.endReason());
                })
                .onEvent(HumanInputRequested.class, (s, e) -> new State(conversationId, ConversationStatus.AWAITING_HUMAN,
                        s.initiator(), s.recipient(), s.maxTurns(), s.messages(), s.executions(), s.autoReplies(),
                        s.pendingExecution(), Optional.of(new PendingHumanInput(e.agent(), e.prompt(), e.forIndex(),
                        e.terminateOnEmpty(), e.deadline())), s.autoApprovedFor(), s.notices(), s.endReason()))
                .onEvent(HumanInputReceived.class, (s, e) -> afterHuman(s, e.text().isEmpty(), e.at()))
                .onEvent(HumanInputTimedOut.class, (s, e) -> afterHuman(s, true, e.at()))
                .onEvent(Terminated.class, (s, e) -> s.ended(ConversationStatus.TERMINATED, e.reason()))
                .onEvent(ChatFailed.class, (s, e) -> s.ended(ConversationStatus.FAILED, e.reason()))
                .build();
    }

    /** An empty (or absent) human reply lets the auto reply go, as in AG2, and leaves a notice. */
    private State afterHuman(State s, boolean empty, Instant at) {
        PendingHumanInput pending = s.pendingHuman().orElseThrow();
        List<Notice> notices = s.notices();
        OptionalInt approved = s.autoApprovedFor();
        if (empty) {
            List<Notice> next = new ArrayList<>(notices);
            next.add(new Notice(s.messages().size() - 1, NO_HUMAN_INPUT, at));
            notices = List.copyOf(next);
            approved = OptionalInt.of(pending.forIndex());
        }
        return new State(conversationId, ConversationStatus.RUNNING, s.initiator(), s.recipient(), s.maxTurns(),
                s.messages(), s.executions(), s.autoReplies(), s.pendingExecution(), Optional.empty(), approved,
                notices, s.endReason());
    }
}
