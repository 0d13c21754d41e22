package io.agentexec.cluster.sandbox;

import io.agentexec.cluster.CborSerializable;
import io.agentexec.cluster.FaultInjection;
import io.agentexec.cluster.ClusterSettings.ExecutionSettings;
import io.agentexec.cluster.ClusterSettings.SandboxSettings;
import io.agentexec.cluster.ClusterSettings.FilesSettings;
import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.CancelReply;
import io.agentexec.cluster.api.ExecutionReply;
import io.agentexec.cluster.api.FileReply;
import io.agentexec.cluster.api.OutputChunk;
import io.agentexec.cluster.api.SandboxFileException;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.execution.ExecutionEntity;
import io.agentexec.cluster.placement.Placement;
import io.agentexec.cluster.worker.ExecutionWorker;
import io.agentexec.sandbox.docker.DockerOptions;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.pekko.Done;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.pattern.StatusReply;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.RecoveryCompleted;
import org.apache.pekko.persistence.typed.SnapshotSelectionCriteria;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReply;
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
 * If the worker dies during an execution, that execution ends with {@link ExecutionReply.SandboxLost};
 * the next one opens a fresh container on a healthy worker and says in its reply that the workspace was lost.
 */
public final class SandboxEntity
        extends EventSourcedBehaviorWithEnforcedReplies<SandboxEntity.Command, SandboxEntity.Event, SandboxEntity.State> {

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
                          ActorRef<ExecutionReply> replyTo) implements Command {
        public Execute(String executionKey, ExecutionRequest request, ActorRef<ExecutionReply> replyTo) {
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
     * {@link ExecutionReply.Rejected} when the key is unknown; {@code output} gets its output from now on.
     */
    public record WatchExecution(String executionKey, Optional<ActorRef<OutputChunk>> output,
                                 ActorRef<ExecutionReply> replyTo) implements Command {
    }

    /**
     * Records that the execution with this key ended refused as overloaded, nothing having run, after
     * its caller had already been told it was taken: remembered like any reply, so that every node
     * reads that end (and the key is not run later). Nothing changes for a key the sandbox knows.
     */
    public record RecordRefusal(String executionKey, String reason, ActorRef<Done> replyTo) implements Command {
    }

    private record WorkerAnswered(ExecutionWorker.Reply reply) implements Command {
    }

    private record WorkerTerminated(String worker, String jobId) implements Command {
    }

    private record WatchdogExpired(String executionKey, String why) implements Command {
    }

    private record RetryOpen(String executionKey) implements Command {
    }

    private record FileOpTimedOut(String opId) implements Command {
    }

    private enum IdleTimeout implements Command { INSTANCE }

    private enum ResumeAfterRecovery implements Command { INSTANCE }

    // ---- events

    public sealed interface Event extends CborSerializable {
    }

    /** Image and options are empty in events written before they existed: the defaults, as then. */
    public record Created(String language, Limits limits, Optional<String> image, Optional<DockerOptions> docker)
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

    public record ExecutionFinished(String executionKey, ExecutionReply reply) implements Event {
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

    // ---- state

    public record InFlight(String executionKey, String worker, List<Attempt> failedAttempts) {
    }

    public record Remembered(String executionKey, ExecutionReply reply) {
    }

    public record State(SandboxView.Status status, Optional<SandboxSpec> spec,
                        Optional<String> worker, long executions, Optional<String> workspaceLost,
                        Optional<InFlight> inFlight, List<Remembered> recent, Optional<String> closedReason) {

        static State none() {
            return new State(SandboxView.Status.NONE, Optional.empty(), Optional.empty(), 0,
                    Optional.empty(), Optional.empty(), List.of(), Optional.empty());
        }

        Optional<String> language() {
            return spec.map(SandboxSpec::language);
        }

        Optional<Limits> limits() {
            return spec.map(SandboxSpec::limits);
        }

        boolean usable() {
            return status == SandboxView.Status.ACTIVE || status == SandboxView.Status.EXPIRED;
        }

        Optional<ExecutionReply> remembered(String key) {
            return recent.stream().filter(r -> r.executionKey().equals(key)).map(Remembered::reply).findFirst();
        }

        State with(Event event, int rememberedResults) {
            if (event instanceof Created c) {
                return new State(SandboxView.Status.ACTIVE, Optional.of(c.spec()),
                        Optional.empty(), executions, Optional.empty(), Optional.empty(), recent, Optional.empty());
            }
            if (event instanceof BoundToWorker b) {
                return new State(SandboxView.Status.ACTIVE, spec, Optional.of(b.worker()), executions,
                        workspaceLost, inFlight, recent, closedReason);
            }
            if (event instanceof ExecutionStarted s) {
                List<Attempt> failed = inFlight.filter(f -> f.executionKey().equals(s.executionKey()))
                        .map(InFlight::failedAttempts).orElse(List.of());
                return new State(status, spec, worker, executions, workspaceLost,
                        Optional.of(new InFlight(s.executionKey(), s.worker(), failed)), recent, closedReason);
            }
            if (event instanceof AttemptFailed f) {
                List<Attempt> failed = new ArrayList<>(inFlight.map(InFlight::failedAttempts).orElse(List.of()));
                failed.add(f.attempt());
                return new State(status, spec, Optional.empty(), executions, workspaceLost,
                        Optional.of(new InFlight(f.executionKey(), "", List.copyOf(failed))), recent, closedReason);
            }
            if (event instanceof ExecutionFinished f) {
                List<Remembered> kept = new ArrayList<>(recent);
                kept.add(new Remembered(f.executionKey(), f.reply()));
                while (kept.size() > rememberedResults) {
                    kept.remove(0);
                }
                boolean lost = f.reply() instanceof ExecutionReply.SandboxLost;
                Optional<String> lostReason = lost
                        ? Optional.of(((ExecutionReply.SandboxLost) f.reply()).reason())
                        : f.reply() instanceof ExecutionReply.Completed ? Optional.empty() : workspaceLost;
                return new State(status, spec, lost ? Optional.empty() : worker, executions + 1,
                        lostReason, Optional.empty(), List.copyOf(kept), closedReason);
            }
            if (event instanceof ExecutionRefused r) {
                // remembered as its reply; nothing ran, so the sandbox itself is as it was
                List<Remembered> kept = new ArrayList<>(recent);
                kept.add(new Remembered(r.executionKey(), new ExecutionReply.Overloaded(r.executionKey(), r.reason())));
                while (kept.size() > rememberedResults) {
                    kept.remove(0);
                }
                return new State(status, spec, worker, executions, workspaceLost, inFlight, List.copyOf(kept), closedReason);
            }
            if (event instanceof WorkspaceLost w) {
                return new State(status, spec, Optional.empty(), executions, Optional.of(w.reason()),
                        inFlight, recent, closedReason);
            }
            if (event instanceof Expired e) {
                return new State(SandboxView.Status.EXPIRED, spec, Optional.empty(), executions,
                        Optional.of(e.reason()), Optional.empty(), recent, closedReason);
            }
            Closed c = (Closed) event;
            return new State(SandboxView.Status.CLOSED, spec, Optional.empty(), executions, workspaceLost,
                    Optional.empty(), recent, Optional.of(c.reason()));
        }
    }

    /** An execution between the worker's first answer and its persisted start, or waiting for a retry. */
    private record Dispatch(String executionKey, ExecutionRequest request, String jobId, boolean toBoundWorker,
                            Set<String> avoid, List<ActorRef<OutputChunk>> subscribers) {
    }

    /** A file operation sent to a worker, waiting for its answer. */
    private record PendingFile(String opId, Command command, boolean toBoundWorker) {
    }

    public static Behavior<Command> create(String sandboxId, ActorRef<ClusterSharding.ShardCommand> shard,
                                           ActorRef<Placement.Command> placement, SandboxSettings sandboxSettings,
                                           ExecutionSettings executionSettings, FilesSettings filesSettings) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers -> new SandboxEntity(sandboxId, ctx, timers, shard,
                placement, sandboxSettings, executionSettings, filesSettings)));
    }

    private static final String IDLE = "idle";
    private static final String WATCHDOG = "watchdog";
    private static final String RETRY = "retry";
    private static final String FILE = "file";

    private final String sandboxId;
    private final ActorContext<Command> ctx;
    private final TimerScheduler<Command> timers;
    private final ActorRef<ClusterSharding.ShardCommand> shard;
    private final ActorRef<Placement.Command> placement;
    private final SandboxSettings sandboxSettings;
    private final ExecutionSettings executionSettings;
    private final FilesSettings filesSettings;
    private final ActorRef<ExecutionWorker.Reply> workerReplies;
    private final Address selfAddress;

    // Transient: callers waiting for the execution in flight, and the dispatch in progress.
    private final List<ActorRef<ExecutionReply>> waiters = new ArrayList<>();
    private Optional<Dispatch> dispatch = Optional.empty();
    /** Whether the current attempt already went back to the workers it avoided (once, so overload cannot ping-pong). */
    private boolean retriedAvoidedWorkers;
    private Optional<ActorRef<ExecutionWorker.Command>> watched = Optional.empty();
    private Optional<String> watchedJob = Optional.empty();
    // Transient too: who streams the execution in flight, the worker that accepted it (for a cancel),
    // whether it is to be cancelled, the keys of stashed executions (and which of them are cancelled),
    // and the file operation in progress.
    private final List<ActorRef<OutputChunk>> subscribers = new ArrayList<>();
    private Optional<ActorRef<ExecutionWorker.Command>> acceptedBy = Optional.empty();
    private boolean cancelRequested;
    private final List<String> stashedKeys = new ArrayList<>();
    private final Set<String> cancelledWhileStashed = new HashSet<>();
    private Optional<PendingFile> pendingFile = Optional.empty();

    private SandboxEntity(String sandboxId, ActorContext<Command> ctx, TimerScheduler<Command> timers,
                          ActorRef<ClusterSharding.ShardCommand> shard, ActorRef<Placement.Command> placement,
                          SandboxSettings sandboxSettings, ExecutionSettings executionSettings,
                          FilesSettings filesSettings) {
        super(PersistenceId.of(TYPE_KEY.name(), sandboxId));
        this.sandboxId = sandboxId;
        this.ctx = ctx;
        this.timers = timers;
        this.shard = shard;
        this.placement = placement;
        this.sandboxSettings = sandboxSettings;
        this.executionSettings = executionSettings;
        this.filesSettings = filesSettings;
        this.workerReplies = ctx.messageAdapter(ExecutionWorker.Reply.class, WorkerAnswered::new);
        this.selfAddress = Cluster.get(ctx.getSystem()).selfMember().address();
    }

    @Override
    public State emptyState() {
        return State.none();
    }

    /** No snapshots are ever saved: recovery skips asking the snapshot store (one query less per entity start). */
    @Override
    public Recovery recovery() {
        return Recovery.withSnapshotSelectionCriteria(SnapshotSelectionCriteria.none());
    }

    @Override
    public EventHandler<State, Event> eventHandler() {
        return newEventHandlerBuilder().forAnyState()
                .onAnyEvent((state, event) -> state.with(event, sandboxSettings.rememberedResults()));
    }

    @Override
    public SignalHandler<State> signalHandler() {
        return newSignalHandlerBuilder()
                .onSignal(RecoveryCompleted.instance(), state -> ctx.getSelf().tell(ResumeAfterRecovery.INSTANCE))
                .build();
    }

    @Override
    public CommandHandlerWithReply<Command, Event, State> commandHandler() {
        return newCommandHandlerWithReplyBuilder().forAnyState()
                .onCommand(Create.class, this::onCreate)
                .onCommand(Execute.class, this::onExecute)
                .onCommand(Close.class, this::onClose)
                .onCommand(Cancel.class, this::onCancel)
                .onCommand(WriteFile.class, this::onFile)
                .onCommand(ReadFile.class, this::onFile)
                .onCommand(FileOpTimedOut.class, this::onFileTimedOut)
                .onCommand(GetView.class, (state, cmd) -> Effect().reply(cmd.replyTo(), view(state)))
                .onCommand(InspectExecution.class, this::onInspectExecution)
                .onCommand(WatchExecution.class, this::onWatchExecution)
                .onCommand(RecordRefusal.class, this::onRecordRefusal)
                .onCommand(WorkerAnswered.class, this::onWorkerAnswered)
                .onCommand(WorkerTerminated.class, this::onWorkerTerminated)
                .onCommand(WatchdogExpired.class, (state, cmd) -> state.inFlight()
                        .filter(f -> f.executionKey().equals(cmd.executionKey()) && !f.worker().isEmpty()).isPresent()
                        ? lost(state, cmd.why()) : Effect().noReply())
                .onCommand(RetryOpen.class, this::onRetryOpen)
                .onCommand(IdleTimeout.class, (state, cmd) -> onIdle(state))
                .onCommand(ResumeAfterRecovery.class, (state, cmd) -> onResume(state))
                .build();
    }

    private ReplyEffect<Event, State> onCreate(State state, Create cmd) {
        if (state.status() == SandboxView.Status.NONE) {
            armIdle();
            return Effect().persist(new Created(cmd.spec()))
                    .thenReply(cmd.replyTo(), s -> StatusReply.success(view(s)));
        }
        if (state.status() == SandboxView.Status.CLOSED) {
            return Effect().reply(cmd.replyTo(), StatusReply.error("sandbox " + sandboxId + " is closed"));
        }
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

    private ReplyEffect<Event, State> onExecute(State state, Execute cmd) {
        if (state.status() == SandboxView.Status.NONE) {
            return Effect().reply(cmd.replyTo(), new ExecutionReply.Rejected(cmd.executionKey(),
                    "there is no sandbox " + sandboxId + ": create it first"));
        }
        if (state.status() == SandboxView.Status.CLOSED) {
            return Effect().reply(cmd.replyTo(), new ExecutionReply.Rejected(cmd.executionKey(),
                    "sandbox " + sandboxId + " is closed"));
        }
        stashedKeys.remove(cmd.executionKey());
        Optional<ExecutionReply> earlier = state.remembered(cmd.executionKey());
        if (earlier.isPresent()) {
            return Effect().reply(cmd.replyTo(), earlier.get().asReplayed());
        }
        String busyWith = state.inFlight().map(InFlight::executionKey)
                .or(() -> dispatch.map(Dispatch::executionKey)).orElse("");
        if (busyWith.equals(cmd.executionKey())) {
            waiters.add(cmd.replyTo());
            cmd.output().ifPresent(this::subscribe);
            return Effect().noReply();
        }
        if (!busyWith.isEmpty() || pendingFile.isPresent()) {
            stashedKeys.add(cmd.executionKey());
            return Effect().stash(); // one execution at a time, in order: the workspace is shared
        }
        if (cancelledWhileStashed.remove(cmd.executionKey())) {
            // Cancelled while it waited behind another: it never runs; its outcome is remembered like any.
            ExecutionReply cancelled = new ExecutionReply.Completed(cmd.executionKey(), ExecutionResult.refused(
                    Verdict.CANCELLED, 1, "cancelled by the caller before it started; nothing ran", "none"),
                    List.of(), state.workspaceLost(), false);
            return Effect().persist(new ExecutionFinished(cmd.executionKey(), cancelled))
                    .thenReply(cmd.replyTo(), s -> cancelled);
        }
        armIdle();
        waiters.add(cmd.replyTo());
        cmd.output().ifPresent(subscribers::add);
        submit(state, cmd.executionKey(), cmd.request(), Set.of());
        return Effect().noReply();
    }

    /** A late subscriber to the execution in flight: the worker adds it once it has the job. */
    private void subscribe(ActorRef<OutputChunk> subscriber) {
        subscribers.add(subscriber);
        acceptedBy.ifPresent(worker -> dispatch.ifPresent(d -> worker.tell(new ExecutionWorker.Subscribe(d.jobId(), subscriber))));
    }

    private ReplyEffect<Event, State> onCancel(State state, Cancel cmd) {
        String key = cmd.executionKey();
        if (state.status() == SandboxView.Status.NONE) {
            return Effect().reply(cmd.replyTo(), new CancelReply(key, CancelReply.Outcome.UNKNOWN,
                    "there is no sandbox " + sandboxId));
        }
        Optional<ExecutionReply> earlier = state.remembered(key);
        if (earlier.isPresent()) {
            return Effect().reply(cmd.replyTo(), new CancelReply(key, CancelReply.Outcome.ALREADY_FINISHED,
                    "execution " + key + " already ended: " + earlier.get().status()));
        }
        boolean inFlight = state.inFlight().map(InFlight::executionKey).or(() -> dispatch.map(Dispatch::executionKey))
                .filter(key::equals).isPresent();
        if (inFlight) {
            if (dispatch.filter(d -> d.jobId().isEmpty()).isPresent()) {
                // Waiting to retry opening a container: nothing runs anywhere; it ends here.
                Dispatch waiting = dispatch.get();
                List<Attempt> attempts = state.inFlight().map(InFlight::failedAttempts).orElse(List.of());
                ReplyEffect<Event, State> finished = finish(List.of(), new ExecutionReply.Completed(key,
                        ExecutionResult.refused(Verdict.CANCELLED, 1, "cancelled by the caller while it waited to retry; "
                                + "nothing ran", "none"), attempts, state.workspaceLost(), false));
                cmd.replyTo().tell(new CancelReply(waiting.executionKey(), CancelReply.Outcome.CANCELLING,
                        "cancelled while it waited to retry"));
                return finished;
            }
            cancelRequested = true;
            acceptedBy.ifPresent(worker -> worker.tell(new ExecutionWorker.CancelJob(dispatch.get().jobId())));
            return Effect().reply(cmd.replyTo(), new CancelReply(key, CancelReply.Outcome.CANCELLING,
                    "cancelling: the worker stops the run; its reply will say CANCELLED unless it finished first"));
        }
        if (stashedKeys.contains(key)) {
            cancelledWhileStashed.add(key);
            return Effect().reply(cmd.replyTo(), new CancelReply(key, CancelReply.Outcome.CANCELLING,
                    "cancelled while it waited behind another execution: it will not run"));
        }
        return Effect().reply(cmd.replyTo(), new CancelReply(key, CancelReply.Outcome.UNKNOWN,
                "sandbox " + sandboxId + " knows no execution " + key + " (never sent, or ended long ago)"));
    }

    // ---- one execution by its key, for other nodes

    private boolean busyWith(State state, String key) {
        return state.inFlight().map(InFlight::executionKey).or(() -> dispatch.map(Dispatch::executionKey))
                .filter(key::equals).isPresent();
    }

    private ReplyEffect<Event, State> onInspectExecution(State state, InspectExecution cmd) {
        String key = cmd.executionKey();
        Optional<InFlight> running = state.inFlight().filter(f -> f.executionKey().equals(key));
        boolean dispatching = running.isEmpty() && dispatch.filter(d -> d.executionKey().equals(key)).isPresent();
        return Effect().reply(cmd.replyTo(), new ExecutionEntity.ExecutionView(key,
                running.isPresent() || stashedKeys.contains(key), running.map(InFlight::failedAttempts).orElse(List.of()),
                Optional.empty(), state.remembered(key), dispatching));
    }

    private ReplyEffect<Event, State> onWatchExecution(State state, WatchExecution cmd) {
        String key = cmd.executionKey();
        Optional<ExecutionReply> ended = state.remembered(key);
        if (ended.isPresent()) {
            return Effect().reply(cmd.replyTo(), ended.get().asReplayed());
        }
        if (busyWith(state, key)) {
            waiters.add(cmd.replyTo());
            cmd.output().ifPresent(this::subscribe);
            return Effect().noReply();
        }
        if (stashedKeys.contains(key)) {
            return Effect().stash(); // behind its own Execute: joins it once that one starts
        }
        return Effect().reply(cmd.replyTo(), new ExecutionReply.Rejected(key,
                "sandbox " + sandboxId + " knows no execution " + key));
    }

    private ReplyEffect<Event, State> onRecordRefusal(State state, RecordRefusal cmd) {
        String key = cmd.executionKey();
        if (state.status() == SandboxView.Status.NONE || state.remembered(key).isPresent() || busyWith(state, key)
                || stashedKeys.contains(key)) {
            return Effect().reply(cmd.replyTo(), Done.getInstance());
        }
        return Effect().persist(new ExecutionRefused(key, cmd.reason())).thenReply(cmd.replyTo(), s -> Done.getInstance());
    }

    // ---- files

    private ReplyEffect<Event, State> onFile(State state, Command cmd) {
        ActorRef<FileReply> replyTo = cmd instanceof WriteFile w ? w.replyTo() : ((ReadFile) cmd).replyTo();
        if (state.status() == SandboxView.Status.NONE || state.status() == SandboxView.Status.CLOSED) {
            return Effect().reply(replyTo, new FileReply.Failed(SandboxFileException.Kind.NO_SANDBOX,
                    state.status() == SandboxView.Status.NONE ? "there is no sandbox " + sandboxId
                            : "sandbox " + sandboxId + " is closed"));
        }
        if (state.inFlight().isPresent() || dispatch.isPresent() || pendingFile.isPresent()) {
            return Effect().stash(); // in order with executions: a file written before a run is there for it
        }
        armIdle();
        if (state.worker().isEmpty() && cmd instanceof ReadFile read) {
            return Effect().reply(replyTo, state.workspaceLost().<FileReply>map(reason -> new FileReply.Failed(
                            SandboxFileException.Kind.WORKSPACE_LOST, "the sandbox's files are gone: " + reason))
                    .orElseGet(() -> new FileReply.Failed(SandboxFileException.Kind.NOT_FOUND,
                            "no such file in the workspace: " + read.path() + " (the sandbox has no files yet)")));
        }
        sendFileOp(state, cmd);
        return Effect().noReply();
    }

    private void sendFileOp(State state, Command cmd) {
        String opId = sandboxId + "/file/" + Long.toHexString(ThreadLocalRandom.current().nextLong());
        boolean bound = state.worker().isPresent();
        SandboxSpec spec = state.spec().orElseThrow();
        ExecutionWorker.FileOp op = cmd instanceof WriteFile w
                ? new ExecutionWorker.WriteFile(opId, sandboxId, spec, !bound, w.path(), w.content(), workerReplies)
                : new ExecutionWorker.ReadFile(opId, sandboxId, spec, !bound, ((ReadFile) cmd).path(),
                        ((ReadFile) cmd).maxBytes(), workerReplies);
        pendingFile = Optional.of(new PendingFile(opId, cmd, bound));
        timers.startSingleTimer(FILE, new FileOpTimedOut(opId), filesSettings.timeout());
        placement.tell(new Placement.SubmitFileOp(state.worker(), op));
    }

    private ReplyEffect<Event, State> onFileAnswer(State state, PendingFile pending, ExecutionWorker.Reply reply) {
        ActorRef<FileReply> replyTo = pending.command() instanceof WriteFile w ? w.replyTo()
                : ((ReadFile) pending.command()).replyTo();
        if (reply instanceof ExecutionWorker.FileDone done) {
            List<Event> events = new ArrayList<>();
            if (done.opened()) {
                events.add(new BoundToWorker(Placement.workerName(done.worker(), selfAddress)));
            }
            if (done.sessionLost()) {
                events.add(new WorkspaceLost("the sandbox's container failed during a file operation"
                        + (done.reply() instanceof FileReply.Failed failed ? ": " + failed.message() : "")));
            }
            endFileOp();
            return Effect().persist(events).thenReply(replyTo, s -> done.reply()).thenUnstashAll();
        }
        if (reply instanceof ExecutionWorker.WorkerGone || reply instanceof ExecutionWorker.SessionMissing) {
            String reason = reply instanceof ExecutionWorker.WorkerGone gone
                    ? "worker " + gone.worker() + " is no longer in the cluster; the workspace is lost"
                    : "the sandbox's container is gone from worker " + state.worker().orElse("?") + "; the workspace is lost";
            endFileOp();
            if (pending.command() instanceof WriteFile) {
                // A write opens a fresh container elsewhere; the next execution announces the loss.
                return Effect().persist(new WorkspaceLost(reason)).thenRun(s -> sendFileOp(s, pending.command()))
                        .thenNoReply();
            }
            return Effect().persist(new WorkspaceLost(reason))
                    .thenReply(replyTo, s -> new FileReply.Failed(SandboxFileException.Kind.WORKSPACE_LOST,
                            "the sandbox's files are gone: " + reason))
                    .thenUnstashAll();
        }
        if (reply instanceof ExecutionWorker.NoCapacity none) {
            endFileOp();
            return Effect().reply(replyTo, new FileReply.Failed(SandboxFileException.Kind.FAILED,
                    "no worker can open the sandbox's container: " + none.reason())).thenUnstashAll();
        }
        return Effect().noReply();
    }

    private ReplyEffect<Event, State> onFileTimedOut(State state, FileOpTimedOut timedOut) {
        Optional<PendingFile> pending = pendingFile.filter(p -> p.opId().equals(timedOut.opId()));
        if (pending.isEmpty()) {
            return Effect().noReply();
        }
        endFileOp();
        ActorRef<FileReply> replyTo = pending.get().command() instanceof WriteFile w ? w.replyTo()
                : ((ReadFile) pending.get().command()).replyTo();
        String message = "the worker did not answer within " + filesSettings.timeout()
                + " (agentexec.cluster.files.timeout)";
        if (state.worker().isPresent()) {
            // The worker's own file-op-timeout should have answered first: it is unreachable or its container
            // hangs. Either way the container cannot be trusted: close it, and the next use opens a fresh one.
            String worker = state.worker().get();
            placement.tell(new Placement.CloseOn(worker, sandboxId));
            return Effect().persist(new WorkspaceLost(message + "; the sandbox's container on " + worker
                            + " was closed as broken"))
                    .thenReply(replyTo, s -> new FileReply.Failed(SandboxFileException.Kind.FAILED, message
                            + "; the sandbox's container was closed as broken and its workspace is lost"))
                    .thenUnstashAll();
        }
        return Effect().reply(replyTo, new FileReply.Failed(SandboxFileException.Kind.FAILED, message)).thenUnstashAll();
    }

    private void endFileOp() {
        timers.cancel(FILE);
        pendingFile = Optional.empty();
        armIdle();
    }

    private ReplyEffect<Event, State> onClose(State state, Close cmd) {
        if (state.status() == SandboxView.Status.NONE) {
            return Effect().reply(cmd.replyTo(), StatusReply.error("there is no sandbox " + sandboxId));
        }
        if (state.status() == SandboxView.Status.CLOSED) {
            return Effect().reply(cmd.replyTo(), StatusReply.success(view(state)));
        }
        if (state.inFlight().isPresent() || dispatch.isPresent() || pendingFile.isPresent()) {
            return Effect().stash();
        }
        state.worker().ifPresent(w -> placement.tell(new Placement.CloseOn(w, sandboxId)));
        timers.cancel(IDLE);
        return Effect().persist(new Closed("closed on request"))
                .thenRun(s -> shard.tell(new ClusterSharding.Passivate<>(ctx.getSelf())))
                .thenReply(cmd.replyTo(), s -> StatusReply.success(view(s)));
    }

    private ReplyEffect<Event, State> onWorkerAnswered(State state, WorkerAnswered answered) {
        ExecutionWorker.Reply reply = answered.reply();
        Optional<PendingFile> file = pendingFile.filter(p -> p.opId().equals(reply.jobId()));
        if (file.isPresent()) {
            return onFileAnswer(state, file.get(), reply);
        }
        if (dispatch.filter(d -> d.jobId().equals(reply.jobId())).isEmpty()) {
            return Effect().noReply(); // about a job given up on
        }
        Dispatch current = dispatch.get();
        if (reply instanceof ExecutionWorker.Dispatched dispatched) {
            watch(dispatched.worker(), dispatched.jobId());
            return Effect().noReply();
        }
        if (reply instanceof ExecutionWorker.Refused refused) {
            // The worker found it against the policy: nothing ran and no container was opened.
            stopWatching();
            retriedAvoidedWorkers = false;
            return finish(List.of(), new ExecutionReply.Completed(current.executionKey(), ExecutionResult.refused(
                    Verdict.POLICY_VIOLATION, 1, refused.reason(), "policy"),
                    state.inFlight().map(InFlight::failedAttempts).orElse(List.of()), state.workspaceLost(), false));
        }
        if (reply instanceof ExecutionWorker.Accepted accepted) {
            FaultInjection.workerAccepted(current.executionKey());
            String worker = Placement.workerName(accepted.worker(), selfAddress);
            List<Event> events = new ArrayList<>();
            if (!current.toBoundWorker()) {
                events.add(new BoundToWorker(worker));
            }
            events.add(new ExecutionStarted(current.executionKey(), worker));
            acceptedBy = Optional.of(accepted.worker());
            // Subscribers that came after the job left, and a cancel that came before the worker was known.
            subscribers.stream().filter(s -> !current.subscribers().contains(s))
                    .forEach(s -> accepted.worker().tell(new ExecutionWorker.Subscribe(accepted.jobId(), s)));
            if (cancelRequested) {
                accepted.worker().tell(new ExecutionWorker.CancelJob(accepted.jobId()));
            }
            return Effect().persist(events).thenRun(s -> {
                // Persist before run: the start is in the journal, so the code may run now.
                if (executionSettings.persistBeforeRun()) {
                    accepted.worker().tell(new ExecutionWorker.Proceed(accepted.jobId()));
                }
                watch(accepted.worker(), accepted.jobId());
                timers.startSingleTimer(WATCHDOG, new WatchdogExpired(current.executionKey(),
                        "worker " + worker + " kept the run queued longer than " + executionSettings.queuedWatchdog()
                                + "; the workspace is treated as lost"), executionSettings.queuedWatchdog());
            }).thenNoReply();
        }
        if (reply instanceof ExecutionWorker.Started) {
            Duration limit = current.request().limits().timeout().plus(executionSettings.runWatchdogSlack());
            timers.startSingleTimer(WATCHDOG, new WatchdogExpired(current.executionKey(),
                    "no answer from the worker within " + limit + " of the start; the workspace is treated as lost"), limit);
            return Effect().noReply();
        }
        if (reply instanceof ExecutionWorker.Overloaded overloaded) {
            stopWatching();
            if (cancelRequested) {
                return refuse(current, "cancelled by the caller before any worker took it");
            }
            if (current.toBoundWorker()) {
                return refuse(current, "the sandbox's worker is overloaded: " + overloaded.reason());
            }
            Set<String> avoid = new HashSet<>(current.avoid());
            avoid.add(Placement.workerName(overloaded.worker(), selfAddress));
            submit(state, current.executionKey(), current.request(), avoid);
            return Effect().noReply();
        }
        if (reply instanceof ExecutionWorker.NoCapacity noCapacity) {
            stopWatching();
            if (!current.avoid().isEmpty() && !retriedAvoidedWorkers) {
                // The workers that failed before are the only ones left: better them than none (on a single
                // node, a container that could not be made is retried there, and ends as its error says).
                retriedAvoidedWorkers = true;
                submit(state, current.executionKey(), current.request(), Set.of());
                return Effect().noReply();
            }
            retriedAvoidedWorkers = false;
            return refuse(current, noCapacity.reason());
        }
        if (reply instanceof ExecutionWorker.WorkerGone || reply instanceof ExecutionWorker.SessionMissing) {
            String reason = reply instanceof ExecutionWorker.WorkerGone gone
                    ? "worker " + gone.worker() + " is no longer in the cluster; the workspace is lost"
                    : "the sandbox's container is gone from worker " + state.worker().orElse("?") + "; the workspace is lost";
            // Nothing ran: open a fresh container elsewhere and say so in the result.
            stopWatching();
            return Effect().persist(new WorkspaceLost(reason))
                    .thenRun(s -> submit(s, current.executionKey(), current.request(), Set.of()))
                    .thenNoReply();
        }
        if (reply instanceof ExecutionWorker.Finished finished) {
            retriedAvoidedWorkers = false;
            return onFinished(state, current, finished);
        }
        return Effect().noReply();
    }

    private ReplyEffect<Event, State> onWorkerTerminated(State state, WorkerTerminated terminated) {
        if (dispatch.filter(d -> d.jobId().equals(terminated.jobId())).isEmpty()) {
            return Effect().noReply();
        }
        watched = Optional.empty();
        String reason = "worker " + terminated.worker() + " left the cluster during the run; the workspace is lost";
        if (state.inFlight().filter(f -> f.worker().equals(terminated.worker())).isPresent()) {
            return lost(state, reason);
        }
        // Sent to a worker that died before its answer came: the job may have started there, with the workspace
        // (unless it had to wait for the Proceed that only follows a persisted start).
        Dispatch current = dispatch.get();
        List<Attempt> attempts = new ArrayList<>(state.inFlight().map(InFlight::failedAttempts).orElse(List.of()));
        attempts.add(new Attempt(attempts.size() + 1, terminated.worker(), "lost: " + reason,
                !executionSettings.persistBeforeRun()));
        List<Event> events = new ArrayList<>();
        if (state.worker().isPresent()) {
            events.add(new WorkspaceLost(reason));
        }
        return finish(events, new ExecutionReply.SandboxLost(current.executionKey(), reason, attempts, false));
    }

    private ReplyEffect<Event, State> onFinished(State state, Dispatch current, ExecutionWorker.Finished finished) {
        InFlight inFlight = state.inFlight().orElseThrow();
        stopWatching();
        ExecutionResult result = finished.result();
        List<Attempt> attempts = new ArrayList<>(inFlight.failedAttempts());
        int number = attempts.size() + 1;
        if (result.verdict() == Verdict.CANCELLED) {
            // The caller's decision: a result, never retried. A job cancelled before it opened the
            // sandbox's container leaves the binding void: the next run opens one and says so.
            attempts.add(new Attempt(number, inFlight.worker(), "cancelled", !finished.failedBeforeRun()));
            List<Event> before = finished.sessionLost()
                    ? List.of(new WorkspaceLost("the execution that was to open its container was cancelled first"))
                    : List.of();
            return finish(before, new ExecutionReply.Completed(current.executionKey(), result, attempts,
                    state.workspaceLost(), false));
        }
        if (result.verdict() == Verdict.SANDBOX_ERROR && finished.failedBeforeRun()) {
            Attempt failed = new Attempt(number, inFlight.worker(), "sandbox error: " + result.message(), false);
            attempts.add(failed);
            if (number >= executionSettings.maxAttempts()) {
                return finish(List.of(new AttemptFailed(current.executionKey(), failed)), new ExecutionReply.Completed(
                        current.executionKey(), result, attempts, state.workspaceLost(), false));
            }
            Set<String> avoid = Set.of(inFlight.worker());
            if (cancelRequested) {
                return finish(List.of(new AttemptFailed(current.executionKey(), failed)), new ExecutionReply.Completed(
                        current.executionKey(), ExecutionResult.refused(Verdict.CANCELLED, 1,
                        "cancelled by the caller; its container could not be made, so nothing ran", "none"),
                        attempts, state.workspaceLost(), false));
            }
            dispatch = Optional.of(new Dispatch(current.executionKey(), current.request(), "", false, avoid,
                    current.subscribers()));
            acceptedBy = Optional.empty();
            return Effect().persist(new AttemptFailed(current.executionKey(), failed))
                    .thenRun(s -> timers.startSingleTimer(RETRY, new RetryOpen(current.executionKey()), backoff(number)))
                    .thenNoReply();
        }
        if (finished.sessionLost()) {
            attempts.add(new Attempt(number, inFlight.worker(), "container lost: " + result.message(), true));
            return finish(List.of(), new ExecutionReply.SandboxLost(current.executionKey(),
                    "the sandbox's container failed during the run (" + result.message() + "); the workspace is lost",
                    attempts, false));
        }
        attempts.add(new Attempt(number, inFlight.worker(), "completed", true));
        return finish(List.of(), new ExecutionReply.Completed(current.executionKey(), result, attempts,
                state.workspaceLost(), false));
    }

    private ReplyEffect<Event, State> onRetryOpen(State state, RetryOpen retry) {
        Optional<Dispatch> pending = dispatch.filter(d -> d.executionKey().equals(retry.executionKey()) && d.jobId().isEmpty());
        if (pending.isEmpty()) {
            return Effect().noReply();
        }
        submit(state, pending.get().executionKey(), pending.get().request(), pending.get().avoid());
        return Effect().noReply();
    }

    /** The execution in flight is lost with its worker: terminal SANDBOX_LOST, and the binding is dropped. */
    private ReplyEffect<Event, State> lost(State state, String reason) {
        InFlight inFlight = state.inFlight().orElseThrow();
        stopWatching();
        placement.tell(new Placement.CloseOn(inFlight.worker(), sandboxId));
        List<Attempt> attempts = new ArrayList<>(inFlight.failedAttempts());
        attempts.add(new Attempt(attempts.size() + 1, inFlight.worker(), "lost: " + reason, true));
        return finish(List.of(), new ExecutionReply.SandboxLost(inFlight.executionKey(), reason, attempts, false));
    }

    private ReplyEffect<Event, State> finish(List<Event> before, ExecutionReply reply) {
        List<Event> events = new ArrayList<>(before);
        events.add(new ExecutionFinished(reply.executionKey(), reply));
        timers.cancel(RETRY);
        dispatch = Optional.empty();
        clearExecutionExtras();
        armIdle();
        return Effect().persist(events).thenRun(s -> {
            waiters.forEach(w -> w.tell(reply));
            waiters.clear();
        }).thenNoReply().thenUnstashAll();
    }

    /** Nothing ran and nothing was persisted: the caller is told at once, the next command may go. */
    private ReplyEffect<Event, State> refuse(Dispatch current, String reason) {
        ExecutionReply overloaded = new ExecutionReply.Overloaded(current.executionKey(), reason);
        waiters.forEach(w -> w.tell(overloaded));
        waiters.clear();
        dispatch = Optional.empty();
        clearExecutionExtras();
        return Effect().noReply().thenUnstashAll();
    }

    private void clearExecutionExtras() {
        subscribers.clear();
        acceptedBy = Optional.empty();
        cancelRequested = false;
    }

    private ReplyEffect<Event, State> onIdle(State state) {
        if (state.inFlight().isPresent() || dispatch.isPresent() || pendingFile.isPresent()) {
            armIdle();
            return Effect().noReply();
        }
        if (state.status() == SandboxView.Status.ACTIVE) {
            state.worker().ifPresent(w -> placement.tell(new Placement.CloseOn(w, sandboxId)));
            return Effect().persist(new Expired("the sandbox expired after " + sandboxSettings.idleTimeout()
                            + " unused; its container was removed"))
                    .thenRun(s -> shard.tell(new ClusterSharding.Passivate<>(ctx.getSelf())))
                    .thenNoReply();
        }
        shard.tell(new ClusterSharding.Passivate<>(ctx.getSelf()));
        return Effect().noReply();
    }

    private ReplyEffect<Event, State> onResume(State state) {
        if (state.inFlight().isPresent() && dispatch.isEmpty()) {
            InFlight inFlight = state.inFlight().get();
            if (inFlight.worker().isEmpty()) {
                // It was waiting to retry opening a container: nothing ran yet; it cannot be resumed without its caller.
                return finish(List.of(), new ExecutionReply.SandboxLost(inFlight.executionKey(),
                        "the coordinating node stopped before the execution could start", inFlight.failedAttempts(), false));
            }
            return lost(state, "the coordinating node stopped during the run; its outcome is unknown and the workspace is lost");
        }
        if (state.usable()) {
            armIdle();
        }
        return Effect().noReply();
    }

    private void submit(State state, String executionKey, ExecutionRequest request, Set<String> avoid) {
        String jobId = sandboxId + "/" + executionKey + "/" + Long.toHexString(ThreadLocalRandom.current().nextLong());
        SandboxSpec spec = state.spec().orElseThrow();
        List<ActorRef<OutputChunk>> output = List.copyOf(subscribers);
        acceptedBy = Optional.empty();
        if (state.worker().isPresent()) {
            dispatch = Optional.of(new Dispatch(executionKey, request, jobId, true, avoid, output));
            placement.tell(new Placement.SubmitTo(state.worker().get(), new ExecutionWorker.RunInSandbox(
                    jobId, executionKey, sandboxId, spec, request, false, output, workerReplies,
                    executionSettings.persistBeforeRun())));
        } else {
            dispatch = Optional.of(new Dispatch(executionKey, request, jobId, false, avoid, output));
            placement.tell(new Placement.Submit(new ExecutionWorker.RunInSandbox(
                    jobId, executionKey, sandboxId, spec, request, true, output, workerReplies,
                    executionSettings.persistBeforeRun()), avoid));
        }
    }

    private void armIdle() {
        timers.startSingleTimer(IDLE, IdleTimeout.INSTANCE, sandboxSettings.idleTimeout());
    }

    /** Watches the worker a job went to; a watch is per job, so an earlier one is dropped first. */
    private void watch(ActorRef<ExecutionWorker.Command> worker, String jobId) {
        if (watched.filter(worker::equals).isPresent() && watchedJob.filter(jobId::equals).isPresent()) {
            return;
        }
        watched.ifPresent(ctx::unwatch);
        watched = Optional.of(worker);
        watchedJob = Optional.of(jobId);
        ctx.watchWith(worker, new WorkerTerminated(Placement.workerName(worker, selfAddress), jobId));
    }

    private void stopWatching() {
        timers.cancel(WATCHDOG);
        watched.ifPresent(ctx::unwatch);
        watched = Optional.empty();
    }

    private Duration backoff(int retry) {
        Duration base = executionSettings.retryBackoff().delayBefore(retry);
        double jitter = 1 + ThreadLocalRandom.current().nextDouble() * executionSettings.retryBackoff().randomFactor();
        return Duration.ofMillis((long) (base.toMillis() * jitter));
    }

    private SandboxView view(State state) {
        return new SandboxView(sandboxId, state.status(), state.language(), state.limits(), state.worker(),
                state.executions(), state.workspaceLost(), state.closedReason(),
                state.spec().flatMap(SandboxSpec::image), state.spec().flatMap(SandboxSpec::docker));
    }
}
