package io.agentexec.cluster.sandbox;

import io.agentexec.cluster.CborSerializable;
import io.agentexec.cluster.ClusterSettings.ExecutionSettings;
import io.agentexec.cluster.ClusterSettings.SandboxSettings;
import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.ExecutionReply;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.placement.Placement;
import io.agentexec.cluster.worker.ExecutionWorker;
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
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReply;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehaviorWithEnforcedReplies;
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

    /** Creates the sandbox; idempotent for the same language. */
    public record Create(String language, Limits limits, ActorRef<StatusReply<SandboxView>> replyTo) implements Command {
    }

    public record Execute(String executionKey, ExecutionRequest request, ActorRef<ExecutionReply> replyTo) implements Command {
    }

    /** Removes the container and ends the sandbox; idempotent. Waits for an execution in progress. */
    public record Close(ActorRef<StatusReply<SandboxView>> replyTo) implements Command {
    }

    public record GetView(ActorRef<SandboxView> replyTo) implements Command {
    }

    private record WorkerAnswered(ExecutionWorker.Reply reply) implements Command {
    }

    private record WorkerTerminated(String worker, String jobId) implements Command {
    }

    private record WatchdogExpired(String executionKey, String why) implements Command {
    }

    private record RetryOpen(String executionKey) implements Command {
    }

    private enum IdleTimeout implements Command { INSTANCE }

    private enum ResumeAfterRecovery implements Command { INSTANCE }

    // ---- events

    public sealed interface Event extends CborSerializable {
    }

    public record Created(String language, Limits limits) implements Event {
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

    // ---- state

    public record InFlight(String executionKey, String worker, List<Attempt> failedAttempts) {
    }

    public record Remembered(String executionKey, ExecutionReply reply) {
    }

    public record State(SandboxView.Status status, Optional<String> language, Optional<Limits> limits,
                        Optional<String> worker, long executions, Optional<String> workspaceLost,
                        Optional<InFlight> inFlight, List<Remembered> recent, Optional<String> closedReason) {

        static State none() {
            return new State(SandboxView.Status.NONE, Optional.empty(), Optional.empty(), Optional.empty(), 0,
                    Optional.empty(), Optional.empty(), List.of(), Optional.empty());
        }

        boolean usable() {
            return status == SandboxView.Status.ACTIVE || status == SandboxView.Status.EXPIRED;
        }

        Optional<ExecutionReply> remembered(String key) {
            return recent.stream().filter(r -> r.executionKey().equals(key)).map(Remembered::reply).findFirst();
        }

        State with(Event event, int rememberedResults) {
            if (event instanceof Created c) {
                return new State(SandboxView.Status.ACTIVE, Optional.of(c.language()), Optional.of(c.limits()),
                        Optional.empty(), executions, Optional.empty(), Optional.empty(), recent, Optional.empty());
            }
            if (event instanceof BoundToWorker b) {
                return new State(SandboxView.Status.ACTIVE, language, limits, Optional.of(b.worker()), executions,
                        workspaceLost, inFlight, recent, closedReason);
            }
            if (event instanceof ExecutionStarted s) {
                List<Attempt> failed = inFlight.filter(f -> f.executionKey().equals(s.executionKey()))
                        .map(InFlight::failedAttempts).orElse(List.of());
                return new State(status, language, limits, worker, executions, workspaceLost,
                        Optional.of(new InFlight(s.executionKey(), s.worker(), failed)), recent, closedReason);
            }
            if (event instanceof AttemptFailed f) {
                List<Attempt> failed = new ArrayList<>(inFlight.map(InFlight::failedAttempts).orElse(List.of()));
                failed.add(f.attempt());
                return new State(status, language, limits, Optional.empty(), executions, workspaceLost,
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
                return new State(status, language, limits, lost ? Optional.empty() : worker, executions + 1,
                        lostReason, Optional.empty(), List.copyOf(kept), closedReason);
            }
            if (event instanceof WorkspaceLost w) {
                return new State(status, language, limits, Optional.empty(), executions, Optional.of(w.reason()),
                        inFlight, recent, closedReason);
            }
            if (event instanceof Expired e) {
                return new State(SandboxView.Status.EXPIRED, language, limits, Optional.empty(), executions,
                        Optional.of(e.reason()), Optional.empty(), recent, closedReason);
            }
            Closed c = (Closed) event;
            return new State(SandboxView.Status.CLOSED, language, limits, Optional.empty(), executions, workspaceLost,
                    Optional.empty(), recent, Optional.of(c.reason()));
        }
    }

    /** An execution between the worker's first answer and its persisted start, or waiting for a retry. */
    private record Dispatch(String executionKey, ExecutionRequest request, String jobId, boolean toBoundWorker,
                            Set<String> avoid) {
    }

    public static Behavior<Command> create(String sandboxId, ActorRef<ClusterSharding.ShardCommand> shard,
                                           ActorRef<Placement.Command> placement, SandboxSettings sandboxSettings,
                                           ExecutionSettings executionSettings) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new SandboxEntity(sandboxId, ctx, timers, shard, placement, sandboxSettings, executionSettings)));
    }

    private static final String IDLE = "idle";
    private static final String WATCHDOG = "watchdog";
    private static final String RETRY = "retry";

    private final String sandboxId;
    private final ActorContext<Command> ctx;
    private final TimerScheduler<Command> timers;
    private final ActorRef<ClusterSharding.ShardCommand> shard;
    private final ActorRef<Placement.Command> placement;
    private final SandboxSettings sandboxSettings;
    private final ExecutionSettings executionSettings;
    private final ActorRef<ExecutionWorker.Reply> workerReplies;
    private final Address selfAddress;

    // Transient: callers waiting for the execution in flight, and the dispatch in progress.
    private final List<ActorRef<ExecutionReply>> waiters = new ArrayList<>();
    private Optional<Dispatch> dispatch = Optional.empty();
    private Optional<ActorRef<ExecutionWorker.Command>> watched = Optional.empty();
    private Optional<String> watchedJob = Optional.empty();

    private SandboxEntity(String sandboxId, ActorContext<Command> ctx, TimerScheduler<Command> timers,
                          ActorRef<ClusterSharding.ShardCommand> shard, ActorRef<Placement.Command> placement,
                          SandboxSettings sandboxSettings, ExecutionSettings executionSettings) {
        super(PersistenceId.of(TYPE_KEY.name(), sandboxId));
        this.sandboxId = sandboxId;
        this.ctx = ctx;
        this.timers = timers;
        this.shard = shard;
        this.placement = placement;
        this.sandboxSettings = sandboxSettings;
        this.executionSettings = executionSettings;
        this.workerReplies = ctx.messageAdapter(ExecutionWorker.Reply.class, WorkerAnswered::new);
        this.selfAddress = Cluster.get(ctx.getSystem()).selfMember().address();
    }

    @Override
    public State emptyState() {
        return State.none();
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
                .onCommand(GetView.class, (state, cmd) -> Effect().reply(cmd.replyTo(), view(state)))
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
            return Effect().persist(new Created(cmd.language(), cmd.limits()))
                    .thenReply(cmd.replyTo(), s -> StatusReply.success(view(s)));
        }
        if (state.status() == SandboxView.Status.CLOSED) {
            return Effect().reply(cmd.replyTo(), StatusReply.error("sandbox " + sandboxId + " is closed"));
        }
        if (!state.language().orElse("").equals(cmd.language())) {
            return Effect().reply(cmd.replyTo(), StatusReply.error("sandbox " + sandboxId + " exists with language "
                    + state.language().orElse("") + ", not " + cmd.language()));
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
        Optional<ExecutionReply> earlier = state.remembered(cmd.executionKey());
        if (earlier.isPresent()) {
            return Effect().reply(cmd.replyTo(), earlier.get().asReplayed());
        }
        String busyWith = state.inFlight().map(InFlight::executionKey)
                .or(() -> dispatch.map(Dispatch::executionKey)).orElse("");
        if (busyWith.equals(cmd.executionKey())) {
            waiters.add(cmd.replyTo());
            return Effect().noReply();
        }
        if (!busyWith.isEmpty()) {
            return Effect().stash(); // one execution at a time, in order: the workspace is shared
        }
        armIdle();
        waiters.add(cmd.replyTo());
        submit(state, cmd.executionKey(), cmd.request(), Set.of());
        return Effect().noReply();
    }

    private ReplyEffect<Event, State> onClose(State state, Close cmd) {
        if (state.status() == SandboxView.Status.NONE) {
            return Effect().reply(cmd.replyTo(), StatusReply.error("there is no sandbox " + sandboxId));
        }
        if (state.status() == SandboxView.Status.CLOSED) {
            return Effect().reply(cmd.replyTo(), StatusReply.success(view(state)));
        }
        if (state.inFlight().isPresent() || dispatch.isPresent()) {
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
        if (dispatch.filter(d -> d.jobId().equals(reply.jobId())).isEmpty()) {
            return Effect().noReply(); // about a job given up on
        }
        Dispatch current = dispatch.get();
        if (reply instanceof ExecutionWorker.Dispatched dispatched) {
            watch(dispatched.worker(), dispatched.jobId());
            return Effect().noReply();
        }
        if (reply instanceof ExecutionWorker.Accepted accepted) {
            String worker = Placement.workerName(accepted.worker(), selfAddress);
            List<Event> events = new ArrayList<>();
            if (!current.toBoundWorker()) {
                events.add(new BoundToWorker(worker));
            }
            events.add(new ExecutionStarted(current.executionKey(), worker));
            return Effect().persist(events).thenRun(s -> {
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
        // Sent to a worker that died before its answer came: the job may have started there, with the workspace.
        Dispatch current = dispatch.get();
        List<Attempt> attempts = new ArrayList<>(state.inFlight().map(InFlight::failedAttempts).orElse(List.of()));
        attempts.add(new Attempt(attempts.size() + 1, terminated.worker(), "lost: " + reason, true));
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
        if (result.verdict() == Verdict.SANDBOX_ERROR && finished.failedBeforeRun()) {
            Attempt failed = new Attempt(number, inFlight.worker(), "sandbox error: " + result.message(), false);
            attempts.add(failed);
            if (number >= executionSettings.maxAttempts()) {
                return finish(List.of(new AttemptFailed(current.executionKey(), failed)), new ExecutionReply.Completed(
                        current.executionKey(), result, attempts, state.workspaceLost(), false));
            }
            Set<String> avoid = Set.of(inFlight.worker());
            dispatch = Optional.of(new Dispatch(current.executionKey(), current.request(), "", false, avoid));
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
        return Effect().noReply().thenUnstashAll();
    }

    private ReplyEffect<Event, State> onIdle(State state) {
        if (state.inFlight().isPresent() || dispatch.isPresent()) {
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
        String language = state.language().orElseThrow();
        if (state.worker().isPresent()) {
            dispatch = Optional.of(new Dispatch(executionKey, request, jobId, true, avoid));
            placement.tell(new Placement.SubmitTo(state.worker().get(), new ExecutionWorker.RunInSandbox(
                    jobId, sandboxId, language, request, false, workerReplies)));
        } else {
            dispatch = Optional.of(new Dispatch(executionKey, request, jobId, false, avoid));
            placement.tell(new Placement.Submit(new ExecutionWorker.RunInSandbox(
                    jobId, sandboxId, language, request, true, workerReplies), avoid));
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
                state.executions(), state.workspaceLost(), state.closedReason());
    }
}
