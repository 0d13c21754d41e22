package io.agentexec.cluster.execution;

import io.agentexec.cluster.CborSerializable;
import io.agentexec.cluster.ClusterSettings.ExecutionSettings;
import io.agentexec.cluster.NodeRole;
import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.CancelReply;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.OutputChunk;
import io.agentexec.cluster.dispatch.Decision;
import io.agentexec.cluster.dispatch.Dispatch;
import io.agentexec.cluster.dispatch.Signal;
import io.agentexec.cluster.placement.Placement;
import io.agentexec.cluster.worker.ExecutionWorker;
import io.agentexec.sandbox.model.ExecutionRequest;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.ClusterShardingSettings;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.RecoveryCompleted;
import org.apache.pekko.persistence.typed.SnapshotSelectionCriteria;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReply;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReplyBuilderByState;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehaviorWithEnforcedReplies;
import org.apache.pekko.persistence.typed.javadsl.Recovery;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;
import org.apache.pekko.persistence.typed.javadsl.SignalHandler;

/**
 * One execution that runs in a fresh container (no sandbox), keyed by its idempotency key. The
 * request is persisted only once a worker accepted it; from then on it ends in exactly one terminal
 * outcome, which is an event before it is a reply. Infrastructure failures (SANDBOX_ERROR, a worker's
 * node lost, a worker that never answers) are retried with backoff on another worker, at most
 * max-attempts times; every attempt is listed in the outcome. Results of the user's code are final.
 * A repeated request with the same key gets the stored outcome (or waits for it); it never runs again.
 *
 * <p>States: <b>empty</b> (nothing known of the key), <b>in progress</b> (being dispatched, or accepted and
 * running or waiting to retry), <b>finished</b>. The worker side is {@link Dispatch}'s.
 */
public final class ExecutionEntity
        extends EventSourcedBehaviorWithEnforcedReplies<ExecutionEntity.Command, ExecutionEntity.Event, ExecutionEntity.State> {

    public static final EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "Execution");

    // ---- commands

    public sealed interface Command extends CborSerializable {
    }

    /** Runs the request (once per key); {@code output} gets its output chunks while it runs (best-effort). */
    public record Execute(ExecutionRequest request, Optional<ActorRef<OutputChunk>> output,
                          ActorRef<ExecutionOutcome> replyTo) implements Command {
        public Execute(ExecutionRequest request, ActorRef<ExecutionOutcome> replyTo) {
            this(request, Optional.empty(), replyTo);
        }
    }

    /** Cancels the execution: its outcome becomes a Completed with verdict CANCELLED (unless it ended first). */
    public record Cancel(ActorRef<CancelReply> replyTo) implements Command {
    }

    public record Inspect(ActorRef<ExecutionView> replyTo) implements Command {
    }

    /**
     * Waits for the outcome without ever starting the execution (for a node that did not take the
     * request): the stored outcome at once when it ended, a NotFound when no execution of this key
     * is known; {@code output} gets its output chunks from now on while it runs (best-effort).
     */
    public record Watch(Optional<ActorRef<OutputChunk>> output, ActorRef<ExecutionOutcome> replyTo) implements Command {
    }

    /** A message of the dispatch's own (a worker's answer, a watchdog, a retry, a lost worker). */
    private record FromDispatch(Signal signal) implements Command {
    }

    private enum ResumeAfterRecovery implements Command { INSTANCE }

    private enum PassivateNow implements Command { INSTANCE }

    /**
     * What the entity knows, for operators, tests and other nodes. {@code dispatching}: not accepted
     * yet, but a worker is being asked to take it (so the key is known, not free).
     */
    public record ExecutionView(String executionKey, boolean accepted, List<Attempt> attempts,
                                Optional<Integer> runningAttempt, Optional<ExecutionOutcome> outcome,
                                boolean dispatching) implements CborSerializable {
        public ExecutionView(String executionKey, boolean accepted, List<Attempt> attempts,
                             Optional<Integer> runningAttempt, Optional<ExecutionOutcome> outcome) {
            this(executionKey, accepted, attempts, runningAttempt, outcome, false);
        }
    }

    // ---- events (their class names are in journals: never rename them)

    public sealed interface Event extends CborSerializable {
    }

    /** A worker took the request for the first time: from now on it will end in a recorded outcome. */
    public record Accepted(ExecutionRequest request) implements Event {
    }

    public record AttemptStarted(int attempt, String worker) implements Event {
    }

    public record AttemptFailed(Attempt attempt) implements Event {
    }

    public record Finished(ExecutionOutcome reply) implements Event {
    }

    // ---- state

    public record OpenAttempt(int number, String worker) {
    }

    public record State(Optional<ExecutionRequest> request, List<Attempt> attempts, Optional<OpenAttempt> open,
                        Optional<ExecutionOutcome> outcome) {
        static State empty() {
            return new State(Optional.empty(), List.of(), Optional.empty(), Optional.empty());
        }

        boolean accepted() {
            return request.isPresent();
        }

        boolean done() {
            return outcome.isPresent();
        }

        State with(Event event) {
            if (event instanceof Accepted accepted) {
                return new State(Optional.of(accepted.request()), attempts, open, outcome);
            }
            if (event instanceof AttemptStarted started) {
                return new State(request, attempts, Optional.of(new OpenAttempt(started.attempt(), started.worker())), outcome);
            }
            if (event instanceof AttemptFailed failed) {
                List<Attempt> all = new ArrayList<>(attempts);
                all.add(failed.attempt());
                return new State(request, List.copyOf(all), Optional.empty(), outcome);
            }
            Finished finished = (Finished) event;
            return new State(request, finished.reply().attempts(), Optional.empty(), Optional.of(finished.reply()));
        }
    }

    /** Registers the entity with this node's sharding, on the gateway role. */
    public static void init(ActorSystem<?> system, ActorRef<Placement.Command> placement, ExecutionSettings settings) {
        String role = NodeRole.GATEWAY.roleName();
        ClusterSharding.get(system).init(Entity.of(TYPE_KEY, ctx -> create(ctx.getEntityId(), ctx.getShard(), placement,
                        settings))
                .withRole(role)
                .withSettings(ClusterShardingSettings.create(system).withNoPassivationStrategy().withRole(role)));
    }

    public static Behavior<Command> create(String executionKey, ActorRef<ClusterSharding.ShardCommand> shard,
                                           ActorRef<Placement.Command> placement, ExecutionSettings settings) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new ExecutionEntity(executionKey, ctx, timers, shard, placement, settings)));
    }

    private static final String PASSIVATE = "passivate";

    private final String executionKey;
    private final ActorContext<Command> ctx;
    private final TimerScheduler<Command> timers;
    private final ActorRef<ClusterSharding.ShardCommand> shard;
    private final ExecutionSettings settings;
    /** Transient: the run on the workers and who waits for it. Lost with the actor, taken over on recovery. */
    private final Dispatch<Command> dispatch;

    private ExecutionEntity(String executionKey, ActorContext<Command> ctx, TimerScheduler<Command> timers,
                            ActorRef<ClusterSharding.ShardCommand> shard, ActorRef<Placement.Command> placement,
                            ExecutionSettings settings) {
        super(PersistenceId.of(TYPE_KEY.name(), executionKey));
        this.executionKey = executionKey;
        this.ctx = ctx;
        this.timers = timers;
        this.shard = shard;
        this.settings = settings;
        ActorRef<ExecutionWorker.Reply> replies = ctx.messageAdapter(ExecutionWorker.Reply.class,
                reply -> new FromDispatch(new Signal.WorkerAnswered(reply)));
        this.dispatch = new Dispatch<>(ctx, timers, placement, replies, FromDispatch::new, settings,
                Dispatch.Retries.ANY_FAILURE);
    }

    @Override
    public State emptyState() {
        return State.empty();
    }

    /** No snapshots are ever saved: recovery skips asking the snapshot store (one query less per entity start). */
    @Override
    public Recovery recovery() {
        return Recovery.withSnapshotSelectionCriteria(SnapshotSelectionCriteria.none());
    }

    @Override
    public EventHandler<State, Event> eventHandler() {
        return newEventHandlerBuilder().forAnyState().onAnyEvent(State::with);
    }

    @Override
    public SignalHandler<State> signalHandler() {
        return newSignalHandlerBuilder()
                .onSignal(RecoveryCompleted.instance(), state -> {
                    if (state.accepted() && !state.done()) {
                        // Accepted and not ended: this incarnation takes the run over (ResumeAfterRecovery decides).
                        dispatch.adopt(executionKey, state.request(), executionKey, state.attempts(),
                                state.open().map(o -> new Dispatch.OpenAttempt(o.number(), o.worker())), Optional.empty());
                    }
                    ctx.getSelf().tell(ResumeAfterRecovery.INSTANCE);
                })
                .build();
    }

    @Override
    public CommandHandlerWithReply<Command, Event, State> commandHandler() {
        return finished().orElse(empty()).orElse(inProgress()).orElse(anyState()).build();
    }

    // ---- finished: the outcome is recorded; repeats get it again

    private CommandHandlerWithReplyBuilderByState<Command, Event, State, State> finished() {
        return newCommandHandlerWithReplyBuilder().forState(State::done)
                .onCommand(Execute.class, (state, cmd) -> Effect().reply(cmd.replyTo(), state.outcome().get().asReplayed()))
                .onCommand(Watch.class, (state, cmd) -> Effect().reply(cmd.replyTo(), state.outcome().get().asReplayed()))
                .onCommand(Cancel.class, (state, cmd) -> Effect().reply(cmd.replyTo(), new CancelReply(executionKey,
                        CancelReply.Outcome.ALREADY_FINISHED,
                        "execution " + executionKey + " already ended: " + state.outcome().get().status())));
    }

    // ---- empty: nothing known of the key (never run, or refused with nothing recorded)

    private CommandHandlerWithReplyBuilderByState<Command, Event, State, State> empty() {
        return newCommandHandlerWithReplyBuilder().forState(state -> !state.accepted() && dispatch.idle())
                .onCommand(Execute.class, cmd -> {
                    timers.cancel(PASSIVATE);
                    dispatch.begin(executionKey, cmd.request(), executionKey, Optional.empty(), cmd.replyTo(), cmd.output());
                    dispatch.submit(target());
                    return Effect().noReply();
                })
                .onCommand(Watch.class, cmd -> {
                    lingerThenPassivate();
                    return Effect().reply(cmd.replyTo(), new ExecutionOutcome.NotFound(executionKey,
                            "no execution " + executionKey + " is known"));
                })
                .onCommand(Cancel.class, cmd -> {
                    lingerThenPassivate();
                    return Effect().reply(cmd.replyTo(), new CancelReply(executionKey, CancelReply.Outcome.UNKNOWN,
                            "no execution " + executionKey + " is known"));
                });
    }

    // ---- in progress: being dispatched (not accepted yet), or accepted and not ended

    private CommandHandlerWithReplyBuilderByState<Command, Event, State, State> inProgress() {
        return newCommandHandlerWithReplyBuilder().forState(state -> !state.done())
                .onCommand(Execute.class, cmd -> join(cmd.replyTo(), cmd.output()))
                .onCommand(Watch.class, cmd -> join(cmd.replyTo(), cmd.output()))
                .onCommand(Cancel.class, this::onCancel);
    }

    private ReplyEffect<Event, State> join(ActorRef<ExecutionOutcome> replyTo, Optional<ActorRef<OutputChunk>> output) {
        timers.cancel(PASSIVATE);
        dispatch.join(replyTo, output);
        return Effect().noReply();
    }

    private ReplyEffect<Event, State> onCancel(State state, Cancel cmd) {
        Decision decision = dispatch.cancel();
        if (decision instanceof Decision.Finish) {
            // It waited to retry: nothing runs anywhere; it ends here.
            cmd.replyTo().tell(new CancelReply(executionKey, CancelReply.Outcome.CANCELLING,
                    "cancelled while it waited to retry"));
            return apply(state, decision);
        }
        return Effect().reply(cmd.replyTo(), new CancelReply(executionKey, CancelReply.Outcome.CANCELLING,
                "cancelling: the worker stops the run; its outcome will say CANCELLED unless it finished first"));
    }

    // ---- any state

    private CommandHandlerWithReplyBuilderByState<Command, Event, State, State> anyState() {
        return newCommandHandlerWithReplyBuilder().forAnyState()
                .onCommand(Inspect.class, (state, cmd) -> Effect().reply(cmd.replyTo(), view(state)))
                .onCommand(FromDispatch.class, (state, cmd) -> apply(state, dispatch.on(cmd.signal())))
                .onCommand(ResumeAfterRecovery.class, (state, cmd) -> {
                    if (dispatch.idle()) {
                        lingerThenPassivate();
                        return Effect().noReply();
                    }
                    return apply(state, dispatch.resume());
                })
                .onCommand(PassivateNow.class, (state, cmd) -> {
                    if (dispatch.idle()) {
                        shard.tell(new ClusterSharding.Passivate<>(ctx.getSelf()));
                    }
                    return Effect().noReply();
                });
    }

    /** Records what the dispatch decided, as this entity's events; the dispatch goes on once they are persisted. */
    private ReplyEffect<Event, State> apply(State state, Decision decision) {
        if (decision instanceof Decision.Submit) {
            dispatch.submit(target());
            return Effect().noReply();
        }
        if (decision instanceof Decision.Refuse) {
            // Nothing ran, nothing is recorded: the key is free again.
            ctx.getSelf().tell(PassivateNow.INSTANCE);
            return Effect().noReply();
        }
        List<Event> events = new ArrayList<>();
        if (!state.accepted() && !(decision instanceof Decision.Ignore)) {
            // Whatever is recorded of an execution starts with its request.
            events.add(new Accepted(dispatch.request().orElseThrow()));
        }
        if (decision instanceof Decision.Start start) {
            events.add(new AttemptStarted(start.attempt(), start.worker()));
        } else if (decision instanceof Decision.Retry retry) {
            retry.unrecordedStart().ifPresent(worker -> events.add(new AttemptStarted(retry.failed().number(), worker)));
            events.add(new AttemptFailed(retry.failed()));
        } else if (decision instanceof Decision.Finish finish) {
            events.add(new Finished(finish.outcome()));
        } else {
            return Effect().noReply(); // Ignore; Unbind never comes: a one-off is pinned to no worker
        }
        return Effect().persist(events).thenRun(s -> {
            dispatch.recorded(decision);
            if (decision instanceof Decision.Finish) {
                lingerThenPassivate();
            }
        }).thenNoReply();
    }

    private Dispatch.Target target() {
        return Dispatch.Target.anywhere(order -> new ExecutionWorker.RunOnce(order.jobId(), order.executionKey(),
                order.request(), order.output(), order.replyTo(), order.awaitProceed()));
    }

    /** Stays in memory a while to answer repeats quickly, then passivates (unless a run started meanwhile). */
    private void lingerThenPassivate() {
        timers.startSingleTimer(PASSIVATE, PassivateNow.INSTANCE, settings.linger());
    }

    private ExecutionView view(State state) {
        return new ExecutionView(executionKey, state.accepted(), state.attempts(),
                state.open().map(OpenAttempt::number), state.outcome(), !state.accepted() && !dispatch.idle());
    }
}
