package io.agentexec.cluster.execution;

import io.agentexec.cluster.CborSerializable;
import io.agentexec.cluster.FaultInjection;
import io.agentexec.cluster.ClusterSettings.ExecutionSettings;
import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.CancelReply;
import io.agentexec.cluster.api.ExecutionReply;
import io.agentexec.cluster.api.OutputChunk;
import io.agentexec.cluster.placement.Placement;
import io.agentexec.cluster.worker.ExecutionWorker;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
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
 * One execution that runs in a fresh container (no sandbox), keyed by its idempotency key. The
 * request is persisted only once a worker accepted it; from then on it ends in exactly one terminal
 * reply, which is an event before it is a reply. Infrastructure failures (SANDBOX_ERROR, a worker's
 * node lost, a worker that never answers) are retried with backoff on another worker, at most
 * max-attempts times; every attempt is listed in the reply. Results of the user's code are final.
 * A repeated request with the same key gets the stored reply (or waits for it); it never runs again.
 */
public final class ExecutionEntity
        extends EventSourcedBehaviorWithEnforcedReplies<ExecutionEntity.Command, ExecutionEntity.Event, ExecutionEntity.State> {

    public static final EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "Execution");

    // ---- commands

    public sealed interface Command extends CborSerializable {
    }

    /** Runs the request (once per key); {@code output} gets its output chunks while it runs (best-effort). */
    public record Execute(ExecutionRequest request, Optional<ActorRef<OutputChunk>> output,
                          ActorRef<ExecutionReply> replyTo) implements Command {
        public Execute(ExecutionRequest request, ActorRef<ExecutionReply> replyTo) {
            this(request, Optional.empty(), replyTo);
        }
    }

    /** Cancels the execution: its terminal reply becomes a Completed with verdict CANCELLED (unless it ended first). */
    public record Cancel(ActorRef<CancelReply> replyTo) implements Command {
    }

    public record Inspect(ActorRef<ExecutionView> replyTo) implements Command {
    }

    /**
     * Waits for the terminal reply without ever starting the execution (for a node that did not take
     * the request): the stored reply at once when it ended, a Rejected when no execution of this key
     * is known; {@code output} gets its output chunks from now on while it runs (best-effort).
     */
    public record Watch(Optional<ActorRef<OutputChunk>> output, ActorRef<ExecutionReply> replyTo) implements Command {
    }

    private record WorkerAnswered(ExecutionWorker.Reply reply) implements Command {
    }

    private record WorkerTerminated(String worker, String jobId) implements Command {
    }

    private record WatchdogExpired(int attempt, String why) implements Command {
    }

    private record RetryDue(int attempt) implements Command {
    }

    private enum ResumeAfterRecovery implements Command { INSTANCE }

    private enum PassivateNow implements Command { INSTANCE }

    /**
     * What the entity knows, for operators, tests and other nodes. {@code dispatching}: not accepted
     * yet, but a worker is being asked to take it (so the key is known, not free).
     */
    public record ExecutionView(String executionKey, boolean accepted, List<Attempt> attempts,
                                Optional<Integer> runningAttempt, Optional<ExecutionReply> outcome,
                                boolean dispatching) implements CborSerializable {
        public ExecutionView(String executionKey, boolean accepted, List<Attempt> attempts,
                             Optional<Integer> runningAttempt, Optional<ExecutionReply> outcome) {
            this(executionKey, accepted, attempts, runningAttempt, outcome, false);
        }
    }

    // ---- events

    public sealed interface Event extends CborSerializable {
    }

    /** A worker took the request for the first time: from now on it will end in a terminal reply. */
    public record Accepted(ExecutionRequest request) implements Event {
    }

    public record AttemptStarted(int attempt, String worker) implements Event {
    }

    public record AttemptFailed(Attempt attempt) implements Event {
    }

    public record Finished(ExecutionReply reply) implements Event {
    }

    // ---- state

    public record OpenAttempt(int number, String worker) {
    }

    public record State(Optional<ExecutionRequest> request, List<Attempt> attempts, Optional<OpenAttempt> open,
                        Optional<ExecutionReply> outcome) {
        static State empty() {
            return new State(Optional.empty(), List.of(), Optional.empty(), Optional.empty());
        }

        boolean accepted() {
            return request.isPresent();
        }

        boolean done() {
            return outcome.isPresent();
        }

        int nextAttempt() {
            return attempts.size() + 1;
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

    public static Behavior<Command> create(String executionKey, ActorRef<ClusterSharding.ShardCommand> shard,
                                           ActorRef<Placement.Command> placement, ExecutionSettings settings) {
        return Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new ExecutionEntity(executionKey, ctx, timers, shard, placement, settings)));
    }

    private static final String WATCHDOG = "watchdog";
    private static final String RETRY = "retry";
    private static final String PASSIVATE = "passivate";

    private final String executionKey;
    private final ActorContext<Command> ctx;
    private final TimerScheduler<Command> timers;
    private final ActorRef<ClusterSharding.ShardCommand> shard;
    private final ActorRef<Placement.Command> placement;
    private final ExecutionSettings settings;
    private final ActorRef<ExecutionWorker.Reply> workerReplies;
    private final Address selfAddress;

    // Transient: who waits for the reply, and the dispatch in progress. Lost with the actor, rebuilt by retries.
    private final List<ActorRef<ExecutionReply>> waiters = new ArrayList<>();
    private final Set<String> avoid = new HashSet<>();
    private Optional<String> currentJob = Optional.empty();
    private Optional<ExecutionRequest> pendingRequest = Optional.empty();
    private Optional<ActorRef<ExecutionWorker.Command>> watched = Optional.empty();
    private Optional<String> watchedJob = Optional.empty();
    // Transient: who streams the output, who has the job now (for a cancel), and whether it is cancelled.
    private final List<ActorRef<OutputChunk>> subscribers = new ArrayList<>();
    private List<ActorRef<OutputChunk>> sentSubscribers = List.of();
    private Optional<ActorRef<ExecutionWorker.Command>> acceptedBy = Optional.empty();
    private boolean cancelRequested;
    private int capacityRefusals;
    private Optional<Long> firstCapacityRefusal = Optional.empty();

    private ExecutionEntity(String executionKey, ActorContext<Command> ctx, TimerScheduler<Command> timers,
                            ActorRef<ClusterSharding.ShardCommand> shard, ActorRef<Placement.Command> placement,
                            ExecutionSettings settings) {
        super(PersistenceId.of(TYPE_KEY.name(), executionKey));
        this.executionKey = executionKey;
        this.ctx = ctx;
        this.timers = timers;
        this.shard = shard;
        this.placement = placement;
        this.settings = settings;
        this.workerReplies = ctx.messageAdapter(ExecutionWorker.Reply.class, WorkerAnswered::new);
        this.selfAddress = Cluster.get(ctx.getSystem()).selfMember().address();
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
                .onSignal(RecoveryCompleted.instance(), state -> ctx.getSelf().tell(ResumeAfterRecovery.INSTANCE))
                .build();
    }

    @Override
    public CommandHandlerWithReply<Command, Event, State> commandHandler() {
        return newCommandHandlerWithReplyBuilder().forAnyState()
                .onCommand(Execute.class, this::onExecute)
                .onCommand(Inspect.class, (state, cmd) -> Effect().reply(cmd.replyTo(), view(state)))
                .onCommand(Cancel.class, this::onCancel)
                .onCommand(Watch.class, this::onWatch)
                .onCommand(WorkerAnswered.class, this::onWorkerAnswered)
                .onCommand(WorkerTerminated.class, this::onWorkerTerminated)
                .onCommand(WatchdogExpired.class, (state, cmd) -> state.open().filter(o -> o.number() == cmd.attempt()).isPresent()
                        ? attemptLost(state, cmd.why()) : Effect().noReply())
                .onCommand(RetryDue.class, this::onRetryDue)
                .onCommand(ResumeAfterRecovery.class, (state, cmd) -> onResume(state))
                .onCommand(PassivateNow.class, (state, cmd) -> {
                    if (waiters.isEmpty() && (state.done() || !state.accepted()) && currentJob.isEmpty()) {
                        shard.tell(new ClusterSharding.Passivate<>(ctx.getSelf()));
                    }
                    return Effect().noReply();
                })
                .build();
    }

    private ReplyEffect<Event, State> onExecute(State state, Execute cmd) {
        if (state.done()) {
            return Effect().reply(cmd.replyTo(), state.outcome().get().asReplayed());
        }
        waiters.add(cmd.replyTo());
        timers.cancel(PASSIVATE);
        cmd.output().ifPresent(subscriber -> {
            subscribers.add(subscriber);
            // A late subscriber: the worker holding the job adds it.
            acceptedBy.ifPresent(worker -> currentJob.ifPresent(job -> worker.tell(new ExecutionWorker.Subscribe(job, subscriber))));
        });
        if (!state.accepted() && currentJob.isEmpty()) {
            pendingRequest = Optional.of(cmd.request());
            submit(cmd.request(), 1);
        }
        return Effect().noReply();
    }

    private ReplyEffect<Event, State> onWatch(State state, Watch cmd) {
        if (state.done()) {
            return Effect().reply(cmd.replyTo(), state.outcome().get().asReplayed());
        }
        if (!state.accepted() && currentJob.isEmpty()) {
            if (waiters.isEmpty()) {
                timers.startSingleTimer(PASSIVATE, PassivateNow.INSTANCE, settings.linger());
            }
            return Effect().reply(cmd.replyTo(), new ExecutionReply.Rejected(executionKey,
                    "no execution " + executionKey + " is known"));
        }
        waiters.add(cmd.replyTo());
        timers.cancel(PASSIVATE);
        cmd.output().ifPresent(subscriber -> {
            subscribers.add(subscriber);
            // As for a late Execute: the worker holding the job adds it; a later attempt gets it at submit.
            acceptedBy.ifPresent(worker -> currentJob.ifPresent(job -> worker.tell(new ExecutionWorker.Subscribe(job, subscriber))));
        });
        return Effect().noReply();
    }

    private ReplyEffect<Event, State> onCancel(State state, Cancel cmd) {
        if (state.done()) {
            return Effect().reply(cmd.replyTo(), new CancelReply(executionKey, CancelReply.Outcome.ALREADY_FINISHED,
                    "execution " + executionKey + " already ended: " + state.outcome().get().status()));
        }
        if (!state.accepted() && currentJob.isEmpty()) {
            if (waiters.isEmpty()) {
                timers.startSingleTimer(PASSIVATE, PassivateNow.INSTANCE, settings.linger());
            }
            return Effect().reply(cmd.replyTo(), new CancelReply(executionKey, CancelReply.Outcome.UNKNOWN,
                    "no execution " + executionKey + " is known"));
        }
        if (state.open().isEmpty() && currentJob.isEmpty()) {
            // Waiting to retry: nothing runs anywhere; it ends here.
            cmd.replyTo().tell(new CancelReply(executionKey, CancelReply.Outcome.CANCELLING,
                    "cancelled while it waited to retry"));
            return finish(cancelledReply(state.attempts(), "cancelled by the caller while it waited to retry"));
        }
        cancelRequested = true;
        acceptedBy.ifPresent(worker -> worker.tell(new ExecutionWorker.CancelJob(currentJob.orElseThrow())));
        return Effect().reply(cmd.replyTo(), new CancelReply(executionKey, CancelReply.Outcome.CANCELLING,
                "cancelling: the worker stops the run; its reply will say CANCELLED unless it finished first"));
    }

    private ExecutionReply cancelledReply(List<Attempt> attempts, String message) {
        return new ExecutionReply.Completed(executionKey, ExecutionResult.refused(Verdict.CANCELLED, 1, message, "none"),
                attempts, Optional.empty(), false);
    }

    private ReplyEffect<Event, State> onWorkerAnswered(State state, WorkerAnswered answered) {
        ExecutionWorker.Reply reply = answered.reply();
        if (currentJob.filter(reply.jobId()::equals).isEmpty() || state.done()) {
            return Effect().noReply(); // an answer about an attempt already given up
        }
        int attempt = state.nextAttempt();
        if (reply instanceof ExecutionWorker.Refused refused) {
            // The worker found it against the policy: nothing ran; the refusal is the execution's one result.
            stopWatching();
            List<Event> events = state.accepted() ? List.of() : List.of(new Accepted(pendingRequest.orElseThrow()));
            return finish(events, new ExecutionReply.Completed(executionKey, ExecutionResult.refused(
                    Verdict.POLICY_VIOLATION, 1, refused.reason(), "policy"), state.attempts(), Optional.empty(), false));
        }
        if (reply instanceof ExecutionWorker.Dispatched dispatched) {
            watch(dispatched.worker(), dispatched.jobId());
            return Effect().noReply();
        }
        if (reply instanceof ExecutionWorker.Accepted accepted) {
            FaultInjection.workerAccepted(executionKey);
            capacityRefusals = 0;
            firstCapacityRefusal = Optional.empty();
            String worker = Placement.workerName(accepted.worker(), selfAddress);
            List<Event> events = new ArrayList<>();
            if (!state.accepted()) {
                events.add(new Accepted(pendingRequest.orElseThrow()));
            }
            events.add(new AttemptStarted(attempt, worker));
            acceptedBy = Optional.of(accepted.worker());
            subscribers.stream().filter(s -> !sentSubscribers.contains(s))
                    .forEach(s -> accepted.worker().tell(new ExecutionWorker.Subscribe(accepted.jobId(), s)));
            if (cancelRequested) {
                accepted.worker().tell(new ExecutionWorker.CancelJob(accepted.jobId()));
            }
            return Effect().persist(events).thenRun(s -> {
                // Persist before run: the attempt is in the journal, so the code may start now.
                if (settings.persistBeforeRun()) {
                    accepted.worker().tell(new ExecutionWorker.Proceed(accepted.jobId()));
                }
                watch(accepted.worker(), accepted.jobId());
                timers.startSingleTimer(WATCHDOG, new WatchdogExpired(attempt,
                        "worker lost: the attempt waited in its queue longer than " + settings.queuedWatchdog()),
                        settings.queuedWatchdog());
            }).thenNoReply();
        }
        if (reply instanceof ExecutionWorker.Started) {
            Duration limit = state.request().or(() -> pendingRequest).map(r -> r.limits().timeout()).orElse(Duration.ZERO)
                    .plus(settings.runWatchdogSlack());
            timers.startSingleTimer(WATCHDOG, new WatchdogExpired(attempt,
                    "worker lost: no answer within " + limit + " of the start"), limit);
            return Effect().noReply();
        }
        if (reply instanceof ExecutionWorker.Overloaded overloaded) {
            stopWatching();
            avoid.add(Placement.workerName(overloaded.worker(), selfAddress));
            submit(state.request().or(() -> pendingRequest).orElseThrow(), attempt);
            return Effect().noReply();
        }
        if (reply instanceof ExecutionWorker.NoCapacity || reply instanceof ExecutionWorker.WorkerGone) {
            String reason = reply instanceof ExecutionWorker.NoCapacity n ? n.reason() : "the worker is gone";
            stopWatching();
            currentJob = Optional.empty();
            if (!state.accepted()) {
                ExecutionReply overloaded = new ExecutionReply.Overloaded(executionKey, reason);
                waiters.forEach(w -> w.tell(overloaded));
                waiters.clear();
                pendingRequest = Optional.empty();
                subscribers.clear();
                cancelRequested = false;
                ctx.getSelf().tell(PassivateNow.INSTANCE);
                return Effect().noReply();
            }
            if (cancelRequested) {
                return finish(cancelledReply(state.attempts(), "cancelled by the caller while it waited for a worker"));
            }
            if (!avoid.isEmpty()) {
                // The workers that failed before are the only ones left: better them than none.
                avoid.clear();
                submit(state.request().get(), attempt);
                return Effect().noReply();
            }
            // An accepted execution waits for capacity (it was promised a result) up to retry-capacity-wait.
            capacityRefusals++;
            long now = System.nanoTime();
            if (firstCapacityRefusal.isEmpty()) {
                firstCapacityRefusal = Optional.of(now);
            }
            if (now - firstCapacityRefusal.get() < settings.retryCapacityWait().toNanos()) {
                timers.startSingleTimer(RETRY, new RetryDue(attempt), backoff(capacityRefusals));
                return Effect().noReply();
            }
            return finish(new ExecutionReply.SandboxLost(executionKey, "no healthy worker could take the retry within "
                    + settings.retryCapacityWait() + ": " + reason, state.attempts(), false));
        }
        if (reply instanceof ExecutionWorker.Finished finished) {
            return onFinished(state, finished);
        }
        return Effect().noReply();
    }

    private ReplyEffect<Event, State> onWorkerTerminated(State state, WorkerTerminated terminated) {
        if (currentJob.filter(terminated.jobId()::equals).isEmpty() || state.done()) {
            return Effect().noReply();
        }
        watched = Optional.empty();
        if (state.open().isPresent()) {
            return attemptLost(state, "worker lost: its node left the cluster");
        }
        // Sent to a worker that died before its answer came: it may have taken and started the job, unless
        // it had to wait for the Proceed that only follows a persisted start.
        int number = state.nextAttempt();
        Attempt lost = new Attempt(number, terminated.worker(), "worker lost: its node left the cluster before it answered",
                !settings.persistBeforeRun());
        List<Event> events = new ArrayList<>();
        if (!state.accepted()) {
            events.add(new Accepted(pendingRequest.orElseThrow()));
        }
        events.add(new AttemptStarted(number, terminated.worker()));
        if (number >= settings.maxAttempts()) {
            List<Attempt> all = new ArrayList<>(state.attempts());
            all.add(lost);
            events.add(new AttemptFailed(lost));
            return finish(events, new ExecutionReply.SandboxLost(executionKey,
                    lost.outcome() + "; gave up after " + number + " attempt(s)", all, false));
        }
        events.add(new AttemptFailed(lost));
        if (cancelRequested) {
            List<Attempt> all = new ArrayList<>(state.attempts());
            all.add(lost);
            return finish(events, cancelledReply(all, "cancelled by the caller; its worker was lost meanwhile (" + lost.outcome() + ")"));
        }
        return Effect().persist(events).thenRun(s -> scheduleRetry(number + 1, terminated.worker())).thenNoReply();
    }

    private ReplyEffect<Event, State> onFinished(State state, ExecutionWorker.Finished finished) {
        OpenAttempt open = state.open().orElseThrow();
        stopWatching();
        ExecutionResult result = finished.result();
        if (result.verdict() != Verdict.SANDBOX_ERROR) {
            List<Attempt> all = new ArrayList<>(state.attempts());
            all.add(new Attempt(open.number(), open.worker(), "completed", true));
            return finish(new ExecutionReply.Completed(executionKey, result, all, Optional.empty(), false));
        }
        Attempt failed = new Attempt(open.number(), open.worker(), "sandbox error: " + result.message(),
                !finished.failedBeforeRun());
        if (open.number() >= settings.maxAttempts()) {
            List<Attempt> all = new ArrayList<>(state.attempts());
            all.add(failed);
            return finish(List.of(new AttemptFailed(failed)),
                    new ExecutionReply.Completed(executionKey, result, all, Optional.empty(), false));
        }
        if (cancelRequested) {
            List<Attempt> all = new ArrayList<>(state.attempts());
            all.add(failed);
            return finish(List.of(new AttemptFailed(failed)), cancelledReply(all,
                    "cancelled by the caller; the attempt failed (" + result.message() + ") and was not retried"));
        }
        return Effect().persist(new AttemptFailed(failed))
                .thenRun(s -> scheduleRetry(open.number() + 1, open.worker()))
                .thenNoReply();
    }

    /** The open attempt's worker died or went silent: the code may have run; try again elsewhere if allowed. */
    private ReplyEffect<Event, State> attemptLost(State state, String why) {
        OpenAttempt open = state.open().orElseThrow();
        stopWatching();
        Attempt lost = new Attempt(open.number(), open.worker(), why, true);
        if (open.number() >= settings.maxAttempts()) {
            List<Attempt> all = new ArrayList<>(state.attempts());
            all.add(lost);
            return finish(List.of(new AttemptFailed(lost)), new ExecutionReply.SandboxLost(executionKey,
                    why + "; gave up after " + open.number() + " attempt(s)", all, false));
        }
        if (cancelRequested) {
            List<Attempt> all = new ArrayList<>(state.attempts());
            all.add(lost);
            return finish(List.of(new AttemptFailed(lost)), cancelledReply(all,
                    "cancelled by the caller; the attempt was lost (" + why + ") and was not retried"));
        }
        return Effect().persist(new AttemptFailed(lost))
                .thenRun(s -> scheduleRetry(open.number() + 1, open.worker()))
                .thenNoReply();
    }

    private ReplyEffect<Event, State> onRetryDue(State state, RetryDue due) {
        if (state.done() || state.open().isPresent() || !state.accepted()) {
            return Effect().noReply();
        }
        submit(state.request().get(), due.attempt());
        return Effect().noReply();
    }

    private ReplyEffect<Event, State> onResume(State state) {
        if (state.done() || !state.accepted()) {
            timers.startSingleTimer(PASSIVATE, PassivateNow.INSTANCE, settings.linger());
            return Effect().noReply();
        }
        if (state.open().isPresent() && currentJob.isEmpty()) {
            // The incarnation that watched this attempt is gone; its answer would go nowhere.
            return attemptLost(state, "coordinator restarted: the attempt's outcome is unknown");
        }
        if (state.open().isEmpty()) {
            scheduleRetry(state.nextAttempt(), "");
        }
        return Effect().noReply();
    }

    private ReplyEffect<Event, State> finish(ExecutionReply reply) {
        return finish(List.of(), reply);
    }

    private ReplyEffect<Event, State> finish(List<Event> before, ExecutionReply reply) {
        List<Event> events = new ArrayList<>(before);
        events.add(new Finished(reply));
        timers.cancel(WATCHDOG);
        timers.cancel(RETRY);
        currentJob = Optional.empty();
        acceptedBy = Optional.empty();
        cancelRequested = false;
        subscribers.clear();
        return Effect().persist(events).thenRun(s -> {
            waiters.forEach(w -> w.tell(reply));
            waiters.clear();
            timers.startSingleTimer(PASSIVATE, PassivateNow.INSTANCE, settings.linger());
        }).thenNoReply();
    }

    private void submit(ExecutionRequest request, int attempt) {
        String jobId = executionKey + "/" + attempt + "/" + Long.toHexString(ThreadLocalRandom.current().nextLong());
        currentJob = Optional.of(jobId);
        acceptedBy = Optional.empty();
        sentSubscribers = List.copyOf(subscribers);
        placement.tell(new Placement.Submit(new ExecutionWorker.RunOnce(jobId, executionKey, request, sentSubscribers,
                workerReplies, settings.persistBeforeRun()), Set.copyOf(avoid)));
    }

    private void scheduleRetry(int attempt, String failedWorker) {
        currentJob = Optional.empty();
        acceptedBy = Optional.empty();
        avoid.clear();
        if (!failedWorker.isEmpty()) {
            avoid.add(failedWorker);
        }
        timers.startSingleTimer(RETRY, new RetryDue(attempt), backoff(attempt - 1));
    }

    private Duration backoff(int retry) {
        Duration base = settings.retryBackoff().delayBefore(retry);
        double jitter = 1 + ThreadLocalRandom.current().nextDouble() * settings.retryBackoff().randomFactor();
        return Duration.ofMillis((long) (base.toMillis() * jitter));
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

    private ExecutionView view(State state) {
        return new ExecutionView(executionKey, state.accepted(), state.attempts(),
                state.open().map(OpenAttempt::number), state.outcome(), !state.accepted() && currentJob.isPresent());
    }
}
