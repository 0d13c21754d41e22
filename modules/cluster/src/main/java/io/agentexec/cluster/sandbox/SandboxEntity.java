package io.agentexec.cluster.sandbox;

import io.agentexec.cluster.CborSerializable;
import io.agentexec.cluster.ClusterSettings;
import io.agentexec.cluster.ClusterSettings.FilesSettings;
import io.agentexec.cluster.ClusterSettings.SandboxSettings;
import io.agentexec.cluster.NodeRole;
import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.CancelReply;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.FileReply;
import io.agentexec.cluster.api.OutputChunk;
import io.agentexec.cluster.api.SandboxFileException;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.dispatch.Decision;
import io.agentexec.cluster.dispatch.Dispatch;
import io.agentexec.cluster.dispatch.Signal;
import io.agentexec.cluster.execution.ExecutionEntity;
import io.agentexec.cluster.placement.Placement;
import io.agentexec.cluster.sandbox.SandboxState.InFlight;
import io.agentexec.cluster.worker.ExecutionWorker;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import io.agentexec.sandbox.model.Verdict;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.apache.pekko.Done;
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
import org.apache.pekko.pattern.StatusReply;
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
 * A sandbox: a workspace that persists across executions, pinned to the one worker that holds its
 * container. Lifecycle: created; bound to a worker when its first execution (or the first after a
 * loss) opens a container there; executions, one at a time, in order; then closed on request or
 * expired after the idle timeout, either of which removes the container and passivates the entity.
 * If the worker dies during an execution, that execution ends with {@link ExecutionOutcome.SandboxLost};
 * the next one opens a fresh container on a healthy worker and says in its outcome that the workspace was lost.
 *
 * <p>States: <b>none</b> (never created), <b>active</b>, <b>expired</b> (its container removed after the idle
 * timeout; the next use opens a fresh one), <b>closed</b>. Executions go to the workers through {@link Dispatch},
 * file operations through {@link SandboxFiles}; either waits (stashed) while the other is in progress.
 */
public final class SandboxEntity
        extends EventSourcedBehaviorWithEnforcedReplies<SandboxEntity.Command, SandboxEntity.Event, SandboxState> {

    public static final EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "Sandbox");

    // ---- commands

    public sealed interface Command extends CborSerializable {
    }

    /** Creates the sandbox; idempotent for the same language, image and options. */
    public record Create(SandboxSpec spec, ActorRef<StatusReply<SandboxView>> replyTo) implements Command {
        public Create(String language, Limits limits, ActorRef<StatusReply<SandboxView>> replyTo) {
            this(SandboxSpec.of(language, limits), replyTo);
        }
    }

    /** Runs a request; {@code output} gets its output chunks while it runs (best-effort). */
    public record Execute(String executionKey, ExecutionRequest request, Optional<ActorRef<OutputChunk>> output,
                          ActorRef<ExecutionOutcome> replyTo) implements Command {
        public Execute(String executionKey, ExecutionRequest request, ActorRef<ExecutionOutcome> replyTo) {
            this(executionKey, request, Optional.empty(), replyTo);
        }
    }

    /** Cancels the execution with this key: running, queued on the worker, or waiting behind another. */
    public record Cancel(String executionKey, ActorRef<CancelReply> replyTo) implements Command {
    }

    /** Writes a workspace file; opens the sandbox's container when it has none. In order with executions. */
    public record WriteFile(String path, byte[] content, ActorRef<FileReply> replyTo) implements Command {
    }

    public record ReadFile(String path, long maxBytes, ActorRef<FileReply> replyTo) implements Command {
    }

    /** Removes the container and ends the sandbox; idempotent. Waits for an execution in progress. */
    public record Close(ActorRef<StatusReply<SandboxView>> replyTo) implements Command {
    }

    public record GetView(ActorRef<SandboxView> replyTo) implements Command {
    }

    /**
     * What the sandbox knows of one execution, by its key, for a node that did not send it: waiting
     * behind another or running ({@code accepted}), being dispatched, or ended ({@code outcome}: its
     * remembered reply); none of these when the key is unknown (or ended longer ago than remembered).
     */
    public record InspectExecution(String executionKey, ActorRef<ExecutionEntity.ExecutionView> replyTo)
            implements Command {
    }

    /**
     * Waits for the terminal reply of the execution with this key without ever starting one (as
     * {@link ExecutionEntity.Watch} does for one-offs): the remembered reply at once when it ended, a
     * {@link ExecutionOutcome.NotFound} when the key is unknown; {@code output} gets its output from now on.
     */
    public record WatchExecution(String executionKey, Optional<ActorRef<OutputChunk>> output,
                                 ActorRef<ExecutionOutcome> replyTo) implements Command {
    }

    /**
     * Records that the execution with this key ended refused as overloaded, nothing having run, after
     * its caller had already been told it was taken: remembered like any reply, so that every node
     * reads that end (and the key is not run later). Nothing changes for a key the sandbox knows.
     */
    public record RecordRefusal(String executionKey, String reason, ActorRef<Done> replyTo) implements Command {
    }

    /** A worker's answer: to the file operation out, or to the execution's job. */
    private record WorkerAnswered(ExecutionWorker.Reply reply) implements Command {
    }

    /** A message of the dispatch's own (a watchdog, a retry, a lost worker). */
    private record FromDispatch(Signal signal) implements Command {
    }

    private record FileOpTimedOut(String opId) implements Command {
    }

    private enum IdleTimeout implements Command { INSTANCE }

    private enum ResumeAfterRecovery implements Command { INSTANCE }

    // ---- events

    public sealed interface Event extends CborSerializable {
    }

    /** Image and options are empty in events written before they existed: the defaults, as then. */
    public record Created(String language, Limits limits, Optional<String> image, Optional<SandboxOptions> docker)
            implements Event {
        public Created(String language, Limits limits) {
            this(language, limits, Optional.empty(), Optional.empty());
        }

        public Created(SandboxSpec spec) {
            this(spec.language(), spec.limits(), spec.image(), spec.docker());
        }

        public SandboxSpec spec() {
            // Optional fields missing from an old event's JSON come back as null, not empty.
            return new SandboxSpec(language, limits, Optional.ofNullable(image).flatMap(i -> i),
                    Optional.ofNullable(docker).flatMap(d -> d));
        }
    }

    /** A fresh container was opened for the sandbox on this worker. */
    public record BoundToWorker(String worker) implements Event {
    }

    public record ExecutionStarted(String executionKey, String worker) implements Event {
    }

    /** The container could not be made; nothing ran; the execution will be tried on another worker. */
    public record AttemptFailed(String executionKey, Attempt attempt) implements Event {
    }

    public record ExecutionFinished(String executionKey, ExecutionOutcome reply) implements Event {
    }

    /** The container is gone (its worker left, or it vanished); the next execution opens a fresh one. */
    public record WorkspaceLost(String reason) implements Event {
    }

    public record Expired(String reason) implements Event {
    }

    public record Closed(String reason) implements Event {
    }

    /** An execution refused as overloaded after its caller was told it was taken (see {@link RecordRefusal}). */
    public record ExecutionRefused(String executionKey, String reason) implements Event {
    }

    /** Registers the entity with this node's sharding, on the gateway role. */
    public static void init(ActorSystem<?> system, ActorRef<Placement.Command> placement, ClusterSettings settings) {
        String role = NodeRole.GATEWAY.roleName();
        ClusterSharding.get(system).init(Entity.of(TYPE_KEY, ctx -> create(ctx.getEntityId(), ctx.getShard(), placement,
                        settings.sandbox(), settings.execution(), settings.files()))
                .withRole(role)
                .withSettings(ClusterShardingSettings.create(system).withNoPassivationStrategy().withRole(role)));
    }

    public static Behavior<Command> create(String sandboxId, ActorRef<ClusterSharding.ShardCommand> shard,
                                           ActorRef<Placement.Command> placement, SandboxSettings sandboxSettings,
                                           ClusterSettings.ExecutionSettings executionSettings,
                                           FilesSettings filesSettings) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new SandboxEntity(sandboxId, ctx, timers, shard,
                placement, sandboxSettings, executionSettings, filesSettings)));
    }

    private static final String IDLE = "idle";

    private final String sandboxId;
    private final ActorContext<Command> ctx;
    private final TimerScheduler<Command> timers;
    private final ActorRef<ClusterSharding.ShardCommand> shard;
    private final ActorRef<Placement.Command> placement;
    private final SandboxSettings settings;
    // Transient, lost with the actor: the execution on the workers, the file operation out, and the keys of
    // executions stashed behind them (and which of those were cancelled while they waited).
    private final Dispatch<Command> dispatch;
    private final SandboxFiles files;
    private final List<String> stashedKeys = new ArrayList<>();
    private final Set<String> cancelledWhileStashed = new HashSet<>();

    private SandboxEntity(String sandboxId, ActorContext<Command> ctx, TimerScheduler<Command> timers,
                          ActorRef<ClusterSharding.ShardCommand> shard, ActorRef<Placement.Command> placement,
                          SandboxSettings settings, ClusterSettings.ExecutionSettings executionSettings,
                          FilesSettings filesSettings) {
        super(PersistenceId.of(TYPE_KEY.name(), sandboxId));
        this.sandboxId = sandboxId;
        this.ctx = ctx;
        this.timers = timers;
        this.shard = shard;
        this.placement = placement;
        this.settings = settings;
        ActorRef<ExecutionWorker.Reply> replies = ctx.messageAdapter(ExecutionWorker.Reply.class, WorkerAnswered::new);
        this.dispatch = new Dispatch<>(ctx, timers, placement, replies, FromDispatch::new, executionSettings,
                Dispatch.Retries.BEFORE_START_ONLY);
        this.files = new SandboxFiles(sandboxId, timers, placement, replies, FileOpTimedOut::new, dispatch::workerName,
                filesSettings);
    }

    @Override
    public SandboxState emptyState() {
        return SandboxState.none();
    }

    /** No snapshots are ever saved: recovery skips asking the snapshot store (one query less per entity start). */
    @Override
    public Recovery recovery() {
        return Recovery.withSnapshotSelectionCriteria(SnapshotSelectionCriteria.none());
    }

    @Override
    public EventHandler<SandboxState, Event> eventHandler() {
        return newEventHandlerBuilder().forAnyState()
                .onAnyEvent((state, event) -> state.with(event, settings.rememberedResults()));
    }

    @Override
    public SignalHandler<SandboxState> signalHandler() {
        return newSignalHandlerBuilder()
                .onSignal(RecoveryCompleted.instance(), state -> {
                    state.inFlight().ifPresent(f -> dispatch.adopt(f.executionKey(), Optional.empty(),
                            jobPrefix(f.executionKey()), f.failedAttempts(), f.worker().isEmpty() ? Optional.empty()
                                    : Optional.of(new Dispatch.OpenAttempt(f.failedAttempts().size() + 1, f.worker())),
                            state.workspaceLost()));
                    ctx.getSelf().tell(ResumeAfterRecovery.INSTANCE);
                })
                .build();
    }

    @Override
    public CommandHandlerWithReply<Command, Event, SandboxState> commandHandler() {
        return none().orElse(closed()).orElse(active()).orElse(expired()).orElse(anyState()).build();
    }

    // ---- none: never created

    private CommandHandlerWithReplyBuilderByState<Command, Event, SandboxState, SandboxState> none() {
        return newCommandHandlerWithReplyBuilder().forState(state -> state.is(SandboxView.Status.NONE))
                .onCommand(Create.class, cmd -> {
                    armIdle();
                    return Effect().persist(new Created(cmd.spec())).thenReply(cmd.replyTo(), s -> StatusReply.success(view(s)));
                })
                .onCommand(Execute.class, cmd -> Effect().reply(cmd.replyTo(), new ExecutionOutcome.NotFound(
                        cmd.executionKey(), "there is no sandbox " + sandboxId + ": create it first")))
                .onCommand(Cancel.class, cmd -> Effect().reply(cmd.replyTo(), new CancelReply(cmd.executionKey(),
                        CancelReply.Outcome.UNKNOWN, "there is no sandbox " + sandboxId)))
                .onCommand(WriteFile.class, cmd -> noSandbox(cmd.replyTo(), "there is no sandbox " + sandboxId))
                .onCommand(ReadFile.class, cmd -> noSandbox(cmd.replyTo(), "there is no sandbox " + sandboxId))
                .onCommand(Close.class, cmd -> Effect().reply(cmd.replyTo(),
                        StatusReply.error("there is no sandbox " + sandboxId)))
                .onCommand(RecordRefusal.class, cmd -> Effect().reply(cmd.replyTo(), Done.getInstance()));
    }

    // ---- closed: its container removed on request; nothing runs any more

    private CommandHandlerWithReplyBuilderByState<Command, Event, SandboxState, SandboxState> closed() {
        return newCommandHandlerWithReplyBuilder().forState(state -> state.is(SandboxView.Status.CLOSED))
                .onCommand(Create.class, cmd -> Effect().reply(cmd.replyTo(),
                        StatusReply.error("sandbox " + sandboxId + " is closed")))
                .onCommand(Execute.class, cmd -> Effect().reply(cmd.replyTo(), new ExecutionOutcome.Rejected(
                        cmd.executionKey(), "sandbox " + sandboxId + " is closed")))
                .onCommand(WriteFile.class, cmd -> noSandbox(cmd.replyTo(), "sandbox " + sandboxId + " is closed"))
                .onCommand(ReadFile.class, cmd -> noSandbox(cmd.replyTo(), "sandbox " + sandboxId + " is closed"))
                .onCommand(Close.class, (state, cmd) -> Effect().reply(cmd.replyTo(), StatusReply.success(view(state))));
    }

    private ReplyEffect<Event, SandboxState> noSandbox(ActorRef<FileReply> replyTo, String message) {
        return Effect().reply(replyTo, new FileReply.Failed(SandboxFileException.Kind.NO_SANDBOX, message));
    }

    // ---- active and expired: usable (an expired one opens a fresh container on its next use)

    private CommandHandlerWithReplyBuilderByState<Command, Event, SandboxState, SandboxState> active() {
        return usable(SandboxView.Status.ACTIVE)
                .onCommand(IdleTimeout.class, (state, cmd) -> {
                    if (busy()) {
                        armIdle();
                        return Effect().noReply();
                    }
                    state.worker().ifPresent(w -> placement.tell(new Placement.CloseOn(w, sandboxId)));
                    return Effect().persist(new Expired("the sandbox expired after " + settings.idleTimeout()
                                    + " unused; its container was removed"))
                            .thenRun(s -> shard.tell(new ClusterSharding.Passivate<>(ctx.getSelf())))
                            .thenNoReply();
                });
    }

    private CommandHandlerWithReplyBuilderByState<Command, Event, SandboxState, SandboxState> expired() {
        return usable(SandboxView.Status.EXPIRED);
    }

    private CommandHandlerWithReplyBuilderByState<Command, Event, SandboxState, SandboxState> usable(
            SandboxView.Status status) {
        return newCommandHandlerWithReplyBuilder().forState(state -> state.is(status))
                .onCommand(Create.class, this::onCreateAgain)
                .onCommand(Execute.class, this::onExecute)
                .onCommand(WriteFile.class, (state, cmd) -> onFile(state, SandboxFiles.Request.write(cmd)))
                .onCommand(ReadFile.class, (state, cmd) -> onFile(state, SandboxFiles.Request.read(cmd)))
                .onCommand(Close.class, this::onClose);
    }

    private ReplyEffect<Event, SandboxState> onCreateAgain(SandboxState state, Create cmd) {
        SandboxSpec existing = state.spec().orElseThrow();
        if (!existing.language().equals(cmd.spec().language())) {
            return Effect().reply(cmd.replyTo(), StatusReply.error("sandbox " + sandboxId + " exists with language "
                    + existing.language() + ", not " + cmd.spec().language()));
        }
        if (!existing.image().equals(cmd.spec().image())) {
            return Effect().reply(cmd.replyTo(), StatusReply.error("sandbox " + sandboxId + " exists with image "
                    + existing.image().orElse("(the language's default)") + ", not "
                    + cmd.spec().image().orElse("(the language's default)")));
        }
        if (!existing.docker().equals(cmd.spec().docker())) {
            return Effect().reply(cmd.replyTo(), StatusReply.error("sandbox " + sandboxId
                    + " exists with other Docker options: " + existing.docker().map(Object::toString).orElse("(the defaults)")));
        }
        armIdle();
        return Effect().reply(cmd.replyTo(), StatusReply.success(view(state)));
    }

    private ReplyEffect<Event, SandboxState> onExecute(SandboxState state, Execute cmd) {
        String key = cmd.executionKey();
        stashedKeys.remove(key);
        Optional<ReplyEffect<Event, SandboxState>> known = replayOrJoin(state, key, cmd.replyTo(), cmd.output());
        if (known.isPresent()) {
            return known.get();
        }
        if (busy()) {
            stashedKeys.add(key);
            return Effect().stash(); // one execution at a time, in order: the workspace is shared
        }
        if (cancelledWhileStashed.remove(key)) {
            // Cancelled while it waited behind another: it never runs; its outcome is remembered like any.
            ExecutionOutcome cancelled = new ExecutionOutcome.Completed(key, ExecutionResult.refused(Verdict.CANCELLED,
                    1, "cancelled by the caller before it started; nothing ran", "none"), List.of(),
                    state.workspaceLost(), false);
            return Effect().persist(new ExecutionFinished(key, cancelled)).thenReply(cmd.replyTo(), s -> cancelled);
        }
        armIdle();
        dispatch.begin(key, cmd.request(), jobPrefix(key), state.workspaceLost(), cmd.replyTo(), cmd.output());
        dispatch.submit(target(state));
        return Effect().noReply();
    }

    private ReplyEffect<Event, SandboxState> onFile(SandboxState state, SandboxFiles.Request request) {
        if (busy()) {
            return Effect().stash(); // in order with executions: a file written before a run is there for it
        }
        armIdle();
        if (state.worker().isEmpty() && !request.isWrite()) {
            return Effect().reply(request.replyTo(), SandboxFiles.readWithoutContainer(request, state.workspaceLost()));
        }
        files.send(request, state.spec().orElseThrow(), state.worker());
        return Effect().noReply();
    }

    private ReplyEffect<Event, SandboxState> onClose(SandboxState state, Close cmd) {
        if (busy()) {
            return Effect().stash(); // after the execution or file operation in progress
        }
        state.worker().ifPresent(w -> placement.tell(new Placement.CloseOn(w, sandboxId)));
        timers.cancel(IDLE);
        return Effect().persist(new Closed("closed on request"))
                .thenRun(s -> shard.tell(new ClusterSharding.Passivate<>(ctx.getSelf())))
                .thenReply(cmd.replyTo(), s -> StatusReply.success(view(s)));
    }

    // ---- any state

    private CommandHandlerWithReplyBuilderByState<Command, Event, SandboxState, SandboxState> anyState() {
        return newCommandHandlerWithReplyBuilder().forAnyState()
                .onCommand(GetView.class, (state, cmd) -> Effect().reply(cmd.replyTo(), view(state)))
                .onCommand(Cancel.class, this::onCancel)
                .onCommand(InspectExecution.class, this::onInspectExecution)
                .onCommand(WatchExecution.class, this::onWatchExecution)
                .onCommand(RecordRefusal.class, this::onRecordRefusal)
                .onCommand(WorkerAnswered.class, (state, cmd) -> files.owns(cmd.reply())
                        ? apply(files.onReply(cmd.reply(), state.worker()))
                        : apply(state, dispatch.on(new Signal.WorkerAnswered(cmd.reply()))))
                .onCommand(FromDispatch.class, (state, cmd) -> apply(state, dispatch.on(cmd.signal())))
                .onCommand(FileOpTimedOut.class, (state, cmd) -> files.onTimeout(cmd.opId(), state.worker())
                        .map(this::apply).orElseGet(() -> Effect().noReply()))
                .onCommand(IdleTimeout.class, cmd -> {
                    if (busy()) {
                        armIdle();
                    } else {
                        shard.tell(new ClusterSharding.Passivate<>(ctx.getSelf()));
                    }
                    return Effect().noReply();
                })
                .onCommand(ResumeAfterRecovery.class, (state, cmd) -> {
                    if (!dispatch.idle()) {
                        return apply(state, dispatch.resume());
                    }
                    if (state.is(SandboxView.Status.ACTIVE) || state.is(SandboxView.Status.EXPIRED)) {
                        armIdle();
                    }
                    return Effect().noReply();
                });
    }

    private ReplyEffect<Event, SandboxState> onCancel(SandboxState state, Cancel cmd) {
        String key = cmd.executionKey();
        Optional<ExecutionOutcome> earlier = state.remembered(key);
        if (earlier.isPresent()) {
            return Effect().reply(cmd.replyTo(), new CancelReply(key, CancelReply.Outcome.ALREADY_FINISHED,
                    "execution " + key + " already ended: " + earlier.get().status()));
        }
        if (inProgress(key)) {
            Decision decision = dispatch.cancel();
            if (decision instanceof Decision.Finish) {
                // Waiting to retry opening a container: nothing runs anywhere; it ends here.
                cmd.replyTo().tell(new CancelReply(key, CancelReply.Outcome.CANCELLING, "cancelled while it waited to retry"));
                return apply(state, decision);
            }
            return Effect().reply(cmd.replyTo(), new CancelReply(key, CancelReply.Outcome.CANCELLING,
                    "cancelling: the worker stops the run; its outcome will say CANCELLED unless it finished first"));
        }
        if (stashedKeys.contains(key)) {
            cancelledWhileStashed.add(key);
            return Effect().reply(cmd.replyTo(), new CancelReply(key, CancelReply.Outcome.CANCELLING,
                    "cancelled while it waited behind another execution: it will not run"));
        }
        return Effect().reply(cmd.replyTo(), new CancelReply(key, CancelReply.Outcome.UNKNOWN,
                "sandbox " + sandboxId + " knows no execution " + key + " (never sent, or ended long ago)"));
    }

    private ReplyEffect<Event, SandboxState> onInspectExecution(SandboxState state, InspectExecution cmd) {
        String key = cmd.executionKey();
        Optional<InFlight> running = state.inFlight().filter(f -> f.executionKey().equals(key));
        boolean dispatching = running.isEmpty() && inProgress(key);
        return Effect().reply(cmd.replyTo(), new ExecutionEntity.ExecutionView(key,
                running.isPresent() || stashedKeys.contains(key), running.map(InFlight::failedAttempts).orElse(List.of()),
                Optional.empty(), state.remembered(key), dispatching));
    }

    private ReplyEffect<Event, SandboxState> onWatchExecution(SandboxState state, WatchExecution cmd) {
        String key = cmd.executionKey();
        Optional<ReplyEffect<Event, SandboxState>> known = replayOrJoin(state, key, cmd.replyTo(), cmd.output());
        if (known.isPresent()) {
            return known.get();
        }
        if (stashedKeys.contains(key)) {
            return Effect().stash(); // behind its own Execute: joins it once that one starts
        }
        return Effect().reply(cmd.replyTo(), new ExecutionOutcome.NotFound(key,
                "sandbox " + sandboxId + " knows no execution " + key));
    }

    /** An execution that ended gets its remembered outcome again; one in progress gets another waiter. */
    private Optional<ReplyEffect<Event, SandboxState>> replayOrJoin(SandboxState state, String key,
                                                                    ActorRef<ExecutionOutcome> replyTo,
                                                                    Optional<ActorRef<OutputChunk>> output) {
        Optional<ExecutionOutcome> ended = state.remembered(key);
        if (ended.isPresent()) {
            return Optional.of(Effect().reply(replyTo, ended.get().asReplayed()));
        }
        if (inProgress(key)) {
            dispatch.join(replyTo, output);
            return Optional.of(Effect().noReply());
        }
        return Optional.empty();
    }

    private ReplyEffect<Event, SandboxState> onRecordRefusal(SandboxState state, RecordRefusal cmd) {
        String key = cmd.executionKey();
        if (state.remembered(key).isPresent() || inProgress(key) || stashedKeys.contains(key)) {
            return Effect().reply(cmd.replyTo(), Done.getInstance());
        }
        return Effect().persist(new ExecutionRefused(key, cmd.reason())).thenReply(cmd.replyTo(), s -> Done.getInstance());
    }

    // ---- recording what the dispatch and the file operations decided

    /** Records what the dispatch decided, as this sandbox's events; the dispatch goes on once they are persisted. */
    private ReplyEffect<Event, SandboxState> apply(SandboxState state, Decision decision) {
        if (decision instanceof Decision.Submit) {
            dispatch.submit(target(state));
            return Effect().noReply();
        }
        if (decision instanceof Decision.Refuse) {
            return Effect().noReply().thenUnstashAll(); // nothing ran, nothing recorded: the next command may go
        }
        if (decision instanceof Decision.Unbind unbind) {
            return Effect().persist(new WorkspaceLost(unbind.reason()))
                    .thenRun(s -> dispatch.submit(target(s)))
                    .thenNoReply();
        }
        String key = dispatch.key().orElseThrow();
        List<Event> events = new ArrayList<>();
        if (decision instanceof Decision.Start start) {
            if (!start.pinned()) {
                events.add(new BoundToWorker(start.worker())); // it opens the sandbox's container there
            }
            events.add(new ExecutionStarted(key, start.worker()));
        } else if (decision instanceof Decision.Retry retry) {
            // Only a failure before any code ran is retried in a sandbox, so its start is always recorded.
            events.add(new AttemptFailed(key, retry.failed()));
        } else if (decision instanceof Decision.Finish finish) {
            finish.workspaceLost().ifPresent(reason -> events.add(new WorkspaceLost(reason)));
            events.add(new ExecutionFinished(key, finish.outcome()));
            if (finish.outcome() instanceof ExecutionOutcome.SandboxLost) {
                // The worker may still hold the container (it went silent): it must not be used again.
                state.inFlight().map(InFlight::worker).filter(w -> !w.isEmpty())
                        .ifPresent(w -> placement.tell(new Placement.CloseOn(w, sandboxId)));
            }
            armIdle();
            return Effect().persist(events).thenRun(s -> dispatch.recorded(decision)).thenNoReply().thenUnstashAll();
        } else {
            return Effect().noReply();
        }
        return Effect().persist(events).thenRun(s -> dispatch.recorded(decision)).thenNoReply();
    }

    /** Records a file operation's answer and gives it to its caller (or sends a write again, elsewhere). */
    private ReplyEffect<Event, SandboxState> apply(SandboxFiles.Step step) {
        armIdle();
        if (step.resend()) {
            return Effect().persist(step.events())
                    .thenRun(s -> files.send(step.request(), s.spec().orElseThrow(), s.worker()))
                    .thenNoReply();
        }
        return Effect().persist(step.events()).thenReply(step.request().replyTo(), s -> step.reply().get())
                .thenUnstashAll();
    }

    private Dispatch.Target target(SandboxState state) {
        SandboxSpec spec = state.spec().orElseThrow();
        boolean openIfMissing = state.worker().isEmpty();
        return new Dispatch.Target(state.worker(), order -> new ExecutionWorker.RunInSandbox(order.jobId(),
                order.executionKey(), sandboxId, spec, order.request(), openIfMissing, order.output(), order.replyTo(),
                order.awaitProceed()));
    }

    private String jobPrefix(String executionKey) {
        return sandboxId + "/" + executionKey;
    }

    /** The execution with this key is being dispatched, runs, or waits to be retried. */
    private boolean inProgress(String key) {
        return dispatch.key().filter(key::equals).isPresent();
    }

    /** An execution or a file operation is in progress: everything else waits for it. */
    private boolean busy() {
        return !dispatch.idle() || files.busy();
    }

    private void armIdle() {
        timers.startSingleTimer(IDLE, IdleTimeout.INSTANCE, settings.idleTimeout());
    }

    private SandboxView view(SandboxState state) {
        return new SandboxView(sandboxId, state.status(), state.language(), state.limits(), state.worker(),
                state.executions(), state.workspaceLost(), state.closedReason(),
                state.spec().flatMap(SandboxSpec::image), state.spec().flatMap(SandboxSpec::docker));
    }
}
