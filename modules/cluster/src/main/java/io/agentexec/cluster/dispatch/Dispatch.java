package io.agentexec.cluster.dispatch;

import io.agentexec.cluster.ClusterSettings.ExecutionSettings;
import io.agentexec.cluster.FaultInjection;
import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.ExecutionOutcome;
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
import java.util.function.Function;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * Takes an entity's executions to the workers, one at a time, and reads what comes back: submit through
 * placement, watch the worker that has the job, the watchdogs, retries with backoff on another worker,
 * the wait for capacity, the persist-before-run handshake, cancellation and the live-output subscribers.
 * It persists nothing and nothing in it must outlive its actor: each signal is answered with a
 * {@link Decision}; the entity records it as its own events and hands it back through {@link #recorded},
 * and only then does the code run, a retry wait, or the callers hear the outcome.
 *
 * @param <C> the entity's command type, in which the dispatch's own messages (timers, death watch) come back
 */
public final class Dispatch<C> {

    /** Which infrastructure failures are tried again on another worker. */
    public enum Retries {
        /** A one-off: nothing outlives an attempt, so a lost worker or a SANDBOX_ERROR is retried elsewhere. */
        ANY_FAILURE,
        /**
         * A sandbox's run: its workspace lives in one container, so only a failure before any code started is
         * retried; a worker lost once the run may have started ends it {@link ExecutionOutcome.SandboxLost}.
         */
        BEFORE_START_ONLY
    }

    private static final Decision IGNORE = new Decision.Ignore();
    private static final Decision SUBMIT = new Decision.Submit();

    // ---- where a job goes

    /** What the entity needs to build a job. */
    public record JobOrder(String jobId, String executionKey, ExecutionRequest request,
                           List<ActorRef<OutputChunk>> output, ActorRef<ExecutionWorker.Reply> replyTo,
                           boolean awaitProceed) {
    }

    /** The job to send, and the one worker it must go to ({@code pinnedTo}: a sandbox bound to it), if any. */
    public record Target(Optional<String> pinnedTo, Function<JobOrder, ExecutionWorker.Job> job) {
        public static Target anywhere(Function<JobOrder, ExecutionWorker.Job> job) {
            return new Target(Optional.empty(), job);
        }
    }

    /** An attempt whose start is recorded: its number and worker (after a restart, all that is known of it). */
    public record OpenAttempt(int number, String worker) {
    }

    // ---- the execution in progress (transient)

    /** Where the current execution is. */
    private sealed interface Phase {
    }

    /** No job out: before the first submit, waiting for a retry or for capacity, or taken over after a restart. */
    private record Waiting(Optional<OpenAttempt> open) implements Phase {
    }

    /** Sent to placement (and perhaps on to a worker, watched): no worker has taken it yet. */
    private record Placing(String jobId, Optional<String> pinnedTo) implements Phase {
    }

    /** A worker took it: attempt {@code attempt}'s start is recorded (or being recorded). */
    private record Taken(String jobId, ActorRef<ExecutionWorker.Command> worker, OpenAttempt attempt) implements Phase {
    }

    private static final class Execution {
        final String key;
        final Optional<ExecutionRequest> request;
        final String jobPrefix;
        final List<ActorRef<ExecutionOutcome>> waiters = new ArrayList<>();
        final List<ActorRef<OutputChunk>> subscribers = new ArrayList<>();
        /** Attempts that failed before the current one, as recorded. */
        List<Attempt> attempts;
        /** Something of it is recorded: it owes its callers a recorded end and may not simply be refused. */
        boolean promised;
        /** Said in a Completed outcome: the sandbox's earlier files are gone. */
        Optional<String> workspaceLost;
        Phase phase;
        List<ActorRef<OutputChunk>> sent = List.of();
        final Set<String> avoid = new HashSet<>();
        /** The current attempt already went back to the workers it avoided (once, so overload cannot ping-pong). */
        boolean triedAvoided;
        boolean cancelRequested;
        int capacityRefusals;
        Optional<Long> firstCapacityRefusal = Optional.empty();

        Execution(String key, Optional<ExecutionRequest> request, String jobPrefix, List<Attempt> attempts,
                  boolean promised, Optional<String> workspaceLost, Phase phase) {
            this.key = key;
            this.request = request;
            this.jobPrefix = jobPrefix;
            this.attempts = List.copyOf(attempts);
            this.promised = promised;
            this.workspaceLost = workspaceLost;
            this.phase = phase;
        }

        Optional<String> jobId() {
            if (phase instanceof Placing placing) {
                return Optional.of(placing.jobId());
            }
            return phase instanceof Taken taken ? Optional.of(taken.jobId()) : Optional.empty();
        }

        int nextAttempt() {
            return attempts.size() + 1;
        }

        List<Attempt> with(Attempt attempt) {
            List<Attempt> all = new ArrayList<>(attempts);
            all.add(attempt);
            return List.copyOf(all);
        }
    }

    private static final String WATCHDOG = "dispatch-watchdog";
    private static final String RETRY = "dispatch-retry";

    private final ActorContext<C> ctx;
    private final TimerScheduler<C> timers;
    private final ActorRef<Placement.Command> placement;
    private final ActorRef<ExecutionWorker.Reply> replies;
    private final Function<Signal, C> wrap;
    private final ExecutionSettings settings;
    private final Deadlines deadlines;
    private final Retries retries;
    private final Address selfAddress;
    private Optional<Execution> current = Optional.empty();
    private Optional<ActorRef<ExecutionWorker.Command>> watched = Optional.empty();
    private Optional<String> watchedJob = Optional.empty();
    /** Tells a retry timer of this execution from one that was replaced or cancelled. */
    private int retryGeneration;

    /**
     * @param replies where workers answer: the entity's adapter, which wraps each answer in
     *                {@link Signal.WorkerAnswered}
     * @param wrap    the entity's command carrying a signal back to it
     */
    public Dispatch(ActorContext<C> ctx, TimerScheduler<C> timers, ActorRef<Placement.Command> placement,
                    ActorRef<ExecutionWorker.Reply> replies, Function<Signal, C> wrap, ExecutionSettings settings,
                    Retries retries) {
        this.ctx = ctx;
        this.timers = timers;
        this.placement = placement;
        this.replies = replies;
        this.wrap = wrap;
        this.settings = settings;
        this.deadlines = new Deadlines(settings);
        this.retries = retries;
        this.selfAddress = ctx.getSystem().address();
    }

    // ---- what the entity asks

    /** No execution in progress. */
    public boolean idle() {
        return current.isEmpty();
    }

    /** The key of the execution in progress. */
    public Optional<String> key() {
        return current.map(e -> e.key);
    }

    /** The request of the execution in progress (empty when idle, or taken over after a restart without it). */
    public Optional<ExecutionRequest> request() {
        return current.flatMap(e -> e.request);
    }

    /** The name the dispatch knows a worker by (its path, with this node's address for a local one). */
    public String workerName(ActorRef<?> worker) {
        return Placement.workerName(worker, selfAddress);
    }

    // ---- starting, joining, taking over

    /**
     * Starts an execution (the dispatch must be idle); {@link #submit} sends it.
     *
     * @param jobPrefix     names its jobs ({@code jobPrefix/attempt/random})
     * @param workspaceLost said in its Completed outcome: the sandbox's earlier files are gone
     */
    public void begin(String key, ExecutionRequest request, String jobPrefix, Optional<String> workspaceLost,
                      ActorRef<ExecutionOutcome> replyTo, Optional<ActorRef<OutputChunk>> output) {
        if (current.isPresent()) {
            throw new IllegalStateException("execution " + current.get().key + " is in progress; " + key + " must wait");
        }
        current = Optional.of(new Execution(key, Optional.of(request), jobPrefix, List.of(), false, workspaceLost,
                new Waiting(Optional.empty())));
        join(replyTo, output);
    }

    /**
     * Takes over, after a restart, an execution whose start (or failure) is recorded: {@link #resume} then
     * decides. {@code request} is empty when it was not recorded (it cannot be tried again then).
     */
    public void adopt(String key, Optional<ExecutionRequest> request, String jobPrefix, List<Attempt> attempts,
                      Optional<OpenAttempt> open, Optional<String> workspaceLost) {
        current = Optional.of(new Execution(key, request, jobPrefix, attempts, true, workspaceLost, new Waiting(open)));
    }

    /** Another caller waits for the execution in progress; {@code output} gets its output from now on. */
    public void join(ActorRef<ExecutionOutcome> replyTo, Optional<ActorRef<OutputChunk>> output) {
        Execution e = current.orElseThrow();
        e.waiters.add(replyTo);
        output.ifPresent(subscriber -> {
            e.subscribers.add(subscriber);
            // A late subscriber: the worker holding the job adds it; a later attempt gets it at submit.
            if (e.phase instanceof Taken taken) {
                taken.worker().tell(new ExecutionWorker.Subscribe(taken.jobId(), subscriber));
            }
        });
    }

    /**
     * The sandbox's workspace was lost while the execution in progress waited (its move failed): its outcome says so.
     */
    public void workspaceLost(String reason) {
        current.ifPresent(e -> e.workspaceLost = Optional.of(reason));
    }

    /** Sends the execution in progress to a worker: the one it is pinned to, else the best not avoided. */
    public void submit(Target target) {
        Execution e = current.orElseThrow();
        ExecutionRequest request = e.request.orElseThrow(() -> new IllegalStateException(
                "execution " + e.key + " cannot be submitted again: its request was not recorded"));
        String jobId = e.jobPrefix + "/" + e.nextAttempt() + "/" + Long.toHexString(ThreadLocalRandom.current().nextLong());
        e.sent = List.copyOf(e.subscribers);
        e.phase = new Placing(jobId, target.pinnedTo());
        ExecutionWorker.Job job = target.job().apply(new JobOrder(jobId, e.key, request, e.sent, replies,
                settings.persistBeforeRun()));
        placement.tell(target.pinnedTo().<Placement.Command>map(worker -> new Placement.SubmitTo(worker, job))
                .orElseGet(() -> new Placement.Submit(job, Set.copyOf(e.avoid))));
    }

    /**
     * After a restart ({@link #adopt}): an attempt whose start was recorded is lost (the incarnation that
     * watched it is gone, its answer would go nowhere); one that waited to be retried is retried, or, when its
     * request was not recorded, ends SandboxLost.
     */
    public Decision resume() {
        if (current.isEmpty() || !(current.get().phase instanceof Waiting waiting)) {
            return IGNORE;
        }
        Execution e = current.get();
        if (waiting.open().isPresent()) {
            return lost(e, waiting.open().get(), "coordinator restarted: the attempt's outcome is unknown");
        }
        if (e.request.isEmpty()) {
            return finish(e, new ExecutionOutcome.SandboxLost(e.key,
                    "the coordinating node stopped before the execution could start", e.attempts, false));
        }
        armRetry(backoff(e.attempts.size()));
        return IGNORE;
    }

    /**
     * Cancels the execution in progress. Waiting for a retry, nothing runs anywhere: it ends here
     * ({@link Decision.Finish}, CANCELLED). Otherwise the worker that has it is told to stop it (or will be, once
     * one takes it) and {@link Decision.Ignore} is returned: its outcome (CANCELLED unless it ended first) follows.
     */
    public Decision cancel() {
        Execution e = current.orElseThrow();
        if (e.phase instanceof Waiting) {
            return finish(e, cancelled(e, e.attempts, "cancelled by the caller while it waited to retry"));
        }
        e.cancelRequested = true;
        if (e.phase instanceof Taken taken) {
            taken.worker().tell(new ExecutionWorker.CancelJob(taken.jobId()));
        }
        return IGNORE;
    }

    // ---- what comes back

    /** Reads a signal about the execution in progress; one about an earlier job or attempt is ignored. */
    public Decision on(Signal signal) {
        if (current.isEmpty()) {
            return IGNORE;
        }
        Execution e = current.get();
        if (signal instanceof Signal.RetryDue due) {
            return due.generation() == retryGeneration && e.phase instanceof Waiting ? SUBMIT : IGNORE;
        }
        if (signal instanceof Signal.WatchdogExpired expired) {
            return e.phase instanceof Taken taken && taken.jobId().equals(expired.jobId())
                    ? lost(e, taken.attempt(), expired.why()) : IGNORE;
        }
        if (signal instanceof Signal.WorkerTerminated terminated) {
            if (e.jobId().filter(terminated.jobId()::equals).isEmpty()) {
                return IGNORE;
            }
            watched = Optional.empty();
            if (e.phase instanceof Taken taken) {
                return lost(e, taken.attempt(), "worker lost: its node left the cluster");
            }
            return lostBeforeAnswer(e, terminated.worker());
        }
        ExecutionWorker.Reply reply = ((Signal.WorkerAnswered) signal).reply();
        if (e.jobId().filter(reply.jobId()::equals).isEmpty()) {
            return IGNORE; // about an attempt already given up
        }
        return onReply(e, reply);
    }

    private Decision onReply(Execution e, ExecutionWorker.Reply reply) {
        if (reply instanceof ExecutionWorker.Dispatched dispatched) {
            watch(dispatched.worker(), dispatched.jobId());
            return IGNORE;
        }
        if (reply instanceof ExecutionWorker.Accepted accepted) {
            return onAccepted(e, accepted);
        }
        if (reply instanceof ExecutionWorker.HandedBack back) {
            return onHandedBack(e, back);
        }
        if (reply instanceof ExecutionWorker.Started) {
            Duration limit = deadlines.started(e.request.orElseThrow().limits().timeout());
            timers.startSingleTimer(WATCHDOG, wrap.apply(new Signal.WatchdogExpired(reply.jobId(),
                    "worker lost: no answer within " + limit + " of the start")), limit);
            return IGNORE;
        }
        if (reply instanceof ExecutionWorker.Finished finished) {
            // A worker accepts a job before it answers it: a Finished always follows an Accepted.
            if (!(e.phase instanceof Taken taken)) {
                return IGNORE;
            }
            stopWatching();
            return onFinished(e, taken.attempt(), finished);
        }
        stopWatching();
        if (reply instanceof ExecutionWorker.Refused refused) {
            // The worker found it against the policy: nothing ran, nothing was opened; the refusal is its result.
            return finish(e, completed(e, ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1, refused.reason(), "policy"),
                    e.attempts));
        }
        Optional<String> pinnedTo = e.phase instanceof Placing placing ? placing.pinnedTo() : Optional.empty();
        if (reply instanceof ExecutionWorker.Overloaded overloaded) {
            if (!e.promised && e.cancelRequested) {
                return refuse(e, "cancelled by the caller before any worker took it");
            }
            if (!e.promised && pinnedTo.isPresent()) {
                return refuse(e, "the sandbox's worker is overloaded: " + overloaded.reason());
            }
            e.avoid.add(workerName(overloaded.worker()));
            return SUBMIT;
        }
        if (reply instanceof ExecutionWorker.WorkerGone || reply instanceof ExecutionWorker.SessionMissing) {
            if (pinnedTo.isEmpty()) {
                return noWorker(e, "the worker is gone");
            }
            // Nothing ran: a fresh container elsewhere, and the outcome says the workspace was lost.
            String reason = reply instanceof ExecutionWorker.WorkerGone
                    ? "worker " + pinnedTo.get() + " is no longer in the cluster; the workspace is lost"
                    : "the sandbox's container is gone from worker " + pinnedTo.get() + "; the workspace is lost";
            e.workspaceLost = Optional.of(reason);
            e.phase = new Waiting(Optional.empty());
            return new Decision.Unbind(reason);
        }
        if (reply instanceof ExecutionWorker.NoCapacity noCapacity) {
            return noWorker(e, noCapacity.reason());
        }
        return IGNORE;
    }

    /**
     * A draining worker did not take the job, or dropped it from its queue before it ran: nothing ran, so no attempt
     * is counted; it goes to another worker (a sandbox's run once its sandbox has moved).
     */
    private Decision onHandedBack(Execution e, ExecutionWorker.HandedBack back) {
        stopWatching();
        String worker = workerName(back.worker());
        Optional<Integer> recorded = e.phase instanceof Taken taken ? Optional.of(taken.attempt().number()) : Optional.empty();
        Optional<String> pinnedTo = e.phase instanceof Placing placing ? placing.pinnedTo() : Optional.empty();
        if (e.cancelRequested) {
            return e.promised ? finish(e, cancelled(e, e.attempts, "cancelled by the caller; its worker had handed it "
                    + "back unrun")) : refuse(e, "cancelled by the caller before any worker took it");
        }
        e.phase = new Waiting(Optional.empty());
        e.avoid.add(worker);
        e.triedAvoided = false;
        if (recorded.isEmpty() && pinnedTo.isEmpty()) {
            return SUBMIT; // nothing recorded, nothing pinned: simply elsewhere
        }
        return new Decision.HandedBack(recorded, worker, back.reason());
    }

    private Decision onAccepted(Execution e, ExecutionWorker.Accepted accepted) {
        FaultInjection.workerAccepted(e.key);
        boolean pinned = e.phase instanceof Placing placing && placing.pinnedTo().isPresent();
        OpenAttempt attempt = new OpenAttempt(e.nextAttempt(), workerName(accepted.worker()));
        e.phase = new Taken(accepted.jobId(), accepted.worker(), attempt);
        e.promised = true;
        e.triedAvoided = false;
        e.capacityRefusals = 0;
        e.firstCapacityRefusal = Optional.empty();
        // Subscribers that came after the job left, and a cancel that came before the worker was known.
        e.subscribers.stream().filter(s -> !e.sent.contains(s))
                .forEach(s -> accepted.worker().tell(new ExecutionWorker.Subscribe(accepted.jobId(), s)));
        if (e.cancelRequested) {
            accepted.worker().tell(new ExecutionWorker.CancelJob(accepted.jobId()));
        }
        return new Decision.Start(attempt.number(), attempt.worker(), pinned);
    }

    private Decision onFinished(Execution e, OpenAttempt open, ExecutionWorker.Finished finished) {
        ExecutionResult result = finished.result();
        if (result.verdict() == Verdict.CANCELLED) {
            // The caller's decision: a result, never retried. A job cancelled before it opened the sandbox's
            // container leaves the binding void: the next run opens one and says so.
            Attempt attempt = new Attempt(open.number(), open.worker(), "cancelled", !finished.failedBeforeRun());
            return finish(e, completed(e, result, e.with(attempt)), finished.sessionLost()
                    ? Optional.of("the execution that was to open its container was cancelled first") : Optional.empty());
        }
        if (result.verdict() == Verdict.SANDBOX_ERROR && (finished.failedBeforeRun() || retries == Retries.ANY_FAILURE)) {
            Attempt failed = new Attempt(open.number(), open.worker(), "sandbox error: " + result.message(),
                    !finished.failedBeforeRun());
            return failed(e, failed, Optional.empty(), all -> completed(e, result, all));
        }
        if (finished.sessionLost()) {
            Attempt lost = new Attempt(open.number(), open.worker(), "container lost: " + result.message(), true);
            return finish(e, new ExecutionOutcome.SandboxLost(e.key, "the sandbox's container failed during the run ("
                    + result.message() + "); the workspace is lost", e.with(lost), false));
        }
        return finish(e, completed(e, result, e.with(new Attempt(open.number(), open.worker(), "completed", true))));
    }

    /** The open attempt's worker died or went silent: the code may have run. */
    private Decision lost(Execution e, OpenAttempt open, String why) {
        stopWatching();
        Attempt lost = new Attempt(open.number(), open.worker(), why, true);
        if (retries == Retries.BEFORE_START_ONLY) {
            return finish(e, new ExecutionOutcome.SandboxLost(e.key, why + "; the workspace is lost", e.with(lost), false));
        }
        return failed(e, lost, Optional.empty(), all -> new ExecutionOutcome.SandboxLost(e.key,
                why + "; gave up after " + open.number() + " attempt(s)", all, false));
    }

    /**
     * The worker the job went to died before it answered: it may have taken and started the job, unless it had
     * to wait for the Proceed that only follows a recorded start.
     */
    private Decision lostBeforeAnswer(Execution e, String worker) {
        stopWatching();
        Attempt lost = new Attempt(e.nextAttempt(), worker, "worker lost: its node left the cluster before it answered",
                !settings.persistBeforeRun());
        if (retries == Retries.BEFORE_START_ONLY) {
            return finish(e, new ExecutionOutcome.SandboxLost(e.key, lost.outcome() + "; the workspace is lost",
                    e.with(lost), false));
        }
        return failed(e, lost, Optional.of(worker), all -> new ExecutionOutcome.SandboxLost(e.key,
                lost.outcome() + "; gave up after " + lost.number() + " attempt(s)", all, false));
    }

    /** An attempt failed without a result of the user's code: give up at max-attempts, else retry elsewhere. */
    private Decision failed(Execution e, Attempt failed, Optional<String> unrecordedStart,
                            Function<List<Attempt>, ExecutionOutcome> givenUp) {
        List<Attempt> all = e.with(failed);
        if (failed.number() >= settings.maxAttempts()) {
            return finish(e, givenUp.apply(all));
        }
        if (e.cancelRequested) {
            return finish(e, cancelled(e, all, "cancelled by the caller; the attempt failed (" + failed.outcome()
                    + ") and was not retried"));
        }
        e.attempts = all;
        e.promised = true;
        e.phase = new Waiting(Optional.empty());
        e.avoid.clear();
        e.avoid.add(failed.worker());
        e.triedAvoided = false;
        return new Decision.Retry(failed, unrecordedStart);
    }

    /** Placement found no worker for the job. */
    private Decision noWorker(Execution e, String reason) {
        if (!e.avoid.isEmpty() && !e.triedAvoided) {
            // The workers that failed before are the only ones left: better them than none (on a single node,
            // a container that could not be made is retried there, and ends as its error says).
            e.triedAvoided = true;
            e.avoid.clear();
            return SUBMIT;
        }
        if (!e.promised) {
            return refuse(e, reason);
        }
        if (e.cancelRequested) {
            return finish(e, cancelled(e, e.attempts, "cancelled by the caller while it waited for a worker"));
        }
        // Something is recorded, so it was promised a result: it waits for capacity up to retry-capacity-wait.
        e.capacityRefusals++;
        long now = System.nanoTime();
        if (e.firstCapacityRefusal.isEmpty()) {
            e.firstCapacityRefusal = Optional.of(now);
        }
        if (now - e.firstCapacityRefusal.get() < settings.retryCapacityWait().toNanos()) {
            e.phase = new Waiting(Optional.empty());
            // A wait for capacity anywhere: the workers that were full may have room after the backoff. Kept avoided,
            // the only survivor of a lost worker was never asked again until the wait ran out (minutes).
            e.avoid.clear();
            armRetry(backoff(e.capacityRefusals));
            return IGNORE;
        }
        return finish(e, new ExecutionOutcome.SandboxLost(e.key, "no healthy worker could take the retry within "
                + settings.retryCapacityWait() + ": " + reason, e.attempts, false));
    }

    // ---- after the entity recorded a decision

    /** The entity recorded {@code decision}: what follows it happens now. */
    public void recorded(Decision decision) {
        if (decision instanceof Decision.Start && current.isPresent() && current.get().phase instanceof Taken taken) {
            // Persist before run: the start is in the journal, so the code may run now.
            if (settings.persistBeforeRun()) {
                taken.worker().tell(new ExecutionWorker.Proceed(taken.jobId()));
            }
            watch(taken.worker(), taken.jobId());
            timers.startSingleTimer(WATCHDOG, wrap.apply(new Signal.WatchdogExpired(taken.jobId(),
                    "worker lost: the attempt waited in its queue longer than " + deadlines.queued())), deadlines.queued());
        } else if (decision instanceof Decision.Retry retry) {
            armRetry(backoff(retry.failed().number()));
        } else if (decision instanceof Decision.Finish finish && current.isPresent()) {
            current.get().waiters.forEach(w -> w.tell(finish.outcome()));
            current = Optional.empty();
        }
    }

    // ---- helpers

    private Decision finish(Execution e, ExecutionOutcome outcome) {
        return finish(e, outcome, Optional.empty());
    }

    private Decision finish(Execution e, ExecutionOutcome outcome, Optional<String> workspaceLost) {
        stopWatching();
        timers.cancel(RETRY);
        e.phase = new Waiting(Optional.empty());
        return new Decision.Finish(outcome, workspaceLost);
    }

    /** Nothing ran and nothing was recorded: the callers are told at once. */
    private Decision refuse(Execution e, String reason) {
        ExecutionOutcome.Overloaded overloaded = new ExecutionOutcome.Overloaded(e.key, reason);
        e.waiters.forEach(w -> w.tell(overloaded));
        current = Optional.empty();
        timers.cancel(RETRY);
        return new Decision.Refuse(overloaded);
    }

    private ExecutionOutcome.Completed completed(Execution e, ExecutionResult result, List<Attempt> attempts) {
        return new ExecutionOutcome.Completed(e.key, result, attempts, e.workspaceLost, false);
    }

    private ExecutionOutcome.Completed cancelled(Execution e, List<Attempt> attempts, String message) {
        return completed(e, ExecutionResult.refused(Verdict.CANCELLED, 1, message, "none"), attempts);
    }

    private void armRetry(Duration after) {
        retryGeneration++;
        timers.startSingleTimer(RETRY, wrap.apply(new Signal.RetryDue(retryGeneration)), after);
    }

    /** The backoff before retry {@code n} (1-based), with its random part. */
    private Duration backoff(int n) {
        Duration base = settings.retryBackoff().delayBefore(n);
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
        ctx.watchWith(worker, wrap.apply(new Signal.WorkerTerminated(workerName(worker), jobId)));
    }

    private void stopWatching() {
        timers.cancel(WATCHDOG);
        watched.ifPresent(ctx::unwatch);
        watched = Optional.empty();
    }

    @Override
    public String toString() {
        return current.map(e -> "Dispatch[" + e.key + " " + e.phase + "]").orElse("Dispatch[idle]");
    }
}
