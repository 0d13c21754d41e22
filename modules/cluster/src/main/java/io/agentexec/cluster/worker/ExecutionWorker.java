package io.agentexec.cluster.worker;

import io.agentexec.cluster.CborSerializable;
import io.agentexec.cluster.FaultInjection;
import io.agentexec.cluster.ClusterSettings.OutputSettings;
import io.agentexec.cluster.ClusterSettings.WorkerSettings;
import io.agentexec.cluster.api.FileReply;
import io.agentexec.cluster.api.OutputChunk;
import io.agentexec.cluster.api.SandboxFileException;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.policy.JobPolicy;
import io.agentexec.sandbox.OneOffRun;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.SandboxSession;
import io.agentexec.sandbox.agent.AgentRefusal;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Verdict;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.DispatcherSelector;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.actor.typed.pubsub.Topic;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.typed.Cluster;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import scala.concurrent.ExecutionContextExecutor;

/**
 * The one owner of this node's sandbox engine. A fixed number of slots run engine calls on their
 * own threads; a bounded queue holds what waits; past both a job is refused at once with
 * {@link Overloaded}, so no mailbox ever grows without bound. Registers with the Receptionist and
 * publishes its load for placement.
 */
public final class ExecutionWorker extends AbstractBehavior<ExecutionWorker.Command> {

    private static final Logger log = LoggerFactory.getLogger(ExecutionWorker.class);

    public static final ServiceKey<Command> SERVICE_KEY = ServiceKey.create(Command.class, "agentexec-execution-worker");

    public sealed interface Command extends CborSerializable {
    }

    /** Work that takes a slot. {@code jobId} correlates the answers; it is unique per attempt. */
    public sealed interface Job extends Command {
        String jobId();

        /** The execution's idempotency key, named in its output chunks. */
        String executionKey();

        ExecutionRequest request();

        /** Who gets the output while it runs (best-effort); empty for nobody. */
        List<ActorRef<OutputChunk>> output();

        ActorRef<Reply> replyTo();

        /**
         * True: accept the job (slot or queue place) but run nothing until the sender, having persisted
         * the attempt's start, sends {@link Proceed}. False (and in messages from senders before it
         * existed): run it as soon as a slot is free.
         */
        boolean awaitProceed();
    }

    /** Runs a request in a fresh container that is removed afterwards. */
    public record RunOnce(String jobId, String executionKey, ExecutionRequest request,
                          List<ActorRef<OutputChunk>> output, ActorRef<Reply> replyTo, boolean awaitProceed)
            implements Job {
        public RunOnce {
            output = List.copyOf(output);
        }

        public RunOnce(String jobId, String executionKey, ExecutionRequest request, List<ActorRef<OutputChunk>> output,
                       ActorRef<Reply> replyTo) {
            this(jobId, executionKey, request, output, replyTo, false);
        }
    }

    /**
     * Runs a request in the sandbox's container on this worker. When this worker holds no container
     * for the sandbox it opens one from {@code spec} if {@code openIfMissing}, else answers {@link SessionMissing}.
     */
    public record RunInSandbox(String jobId, String executionKey, String sandboxId, SandboxSpec spec,
                               ExecutionRequest request, boolean openIfMissing, List<ActorRef<OutputChunk>> output,
                               ActorRef<Reply> replyTo, boolean awaitProceed) implements Job {
        public RunInSandbox {
            output = List.copyOf(output);
        }

        public RunInSandbox(String jobId, String executionKey, String sandboxId, SandboxSpec spec,
                            ExecutionRequest request, boolean openIfMissing, List<ActorRef<OutputChunk>> output,
                            ActorRef<Reply> replyTo) {
            this(jobId, executionKey, sandboxId, spec, request, openIfMissing, output, replyTo, false);
        }
    }

    /**
     * The sender of a job accepted with {@code awaitProceed} persisted the attempt's start: the code may
     * run now (at once when the job holds a slot, else when it gets one). Unknown jobs are ignored.
     */
    public record Proceed(String jobId) implements Command {
    }

    /**
     * Stops a job: removed from the queue (answered {@link Finished} with verdict CANCELLED), or, when
     * running, its session's run is cancelled. Unknown or finished jobs: nothing happens.
     */
    public record CancelJob(String jobId) implements Command {
    }

    /** Adds a subscriber to the output of a queued or running job; ignored when the job is unknown. */
    public record Subscribe(String jobId, ActorRef<OutputChunk> subscriber) implements Command {
    }

    /** A file operation in a sandbox's workspace; never takes a slot. Answered with {@link FileDone} or {@link SessionMissing}. */
    public sealed interface FileOp extends Command {
        String opId();

        String sandboxId();

        SandboxSpec spec();

        boolean openIfMissing();

        String path();

        ActorRef<Reply> replyTo();
    }

    public record WriteFile(String opId, String sandboxId, SandboxSpec spec, boolean openIfMissing, String path,
                            byte[] content, ActorRef<Reply> replyTo) implements FileOp {
    }

    public record ReadFile(String opId, String sandboxId, SandboxSpec spec, boolean openIfMissing, String path,
                           long maxBytes, ActorRef<Reply> replyTo) implements FileOp {
    }

    /** Removes the sandbox's container, if this worker holds one. */
    public record CloseSandbox(String sandboxId) implements Command {
    }

    public record GetLoad(ActorRef<WorkerLoad> replyTo) implements Command {
    }

    /** A job accepted with awaitProceed still has no word after the proceed-timeout. */
    private record ProceedTimedOut(String jobId) implements Command {
    }

    /** A node left the cluster: jobs its entities have not told to proceed never will be. */
    private record NodeRemoved(Address address) implements Command {
    }

    /** A file operation still not answered after the file-op-timeout. */
    private record FileOpTimedOut(FileWork work) implements Command {
    }

    /** A slot thread finished a job; {@code closeAfterReply}: a one-off run, to close once the sender has the answer. */
    private record JobDone(Job job, Outcome outcome, Optional<OneOffRun> closeAfterReply) implements Command {
    }

    private enum PublishLoad implements Command { INSTANCE }

    private enum SweepIdleSessions implements Command { INSTANCE }

    /** What a worker tells the one who sent a job. */
    public sealed interface Reply extends CborSerializable {
        String jobId();
    }

    /**
     * Placement sent the job to this worker (sent by placement, before the worker sees the job): the
     * sender watches the worker from now on, so a worker that dies before answering is noticed.
     */
    public record Dispatched(String jobId, ActorRef<Command> worker) implements Reply {
    }

    /**
     * The job holds a slot or a queue place; {@link Finished} follows. A job sent with awaitProceed runs
     * only after {@link Proceed} (or is dropped, never run, answered {@link Finished} with failedBeforeRun).
     */
    public record Accepted(String jobId, ActorRef<Command> worker) implements Reply {
    }

    /** The job left the queue (and, if it awaited it, was told to proceed): its code is about to run. */
    public record Started(String jobId) implements Reply {
    }

    /** Slots and queue full. Nothing ran. */
    public record Overloaded(String jobId, ActorRef<Command> worker, String reason) implements Reply {
    }

    /** This worker holds no container for the sandbox (and was not asked to open one). Nothing ran. */
    public record SessionMissing(String jobId) implements Reply {
    }

    /**
     * The engine's answer. {@code failedBeforeRun}: a SANDBOX_ERROR raised while making the container,
     * before any user code. {@code sessionLost}: the sandbox's container is gone after this job.
     */
    public record Finished(String jobId, ExecutionResult result, boolean failedBeforeRun, boolean sessionLost)
            implements Reply {
    }

    /**
     * A file operation's answer. {@code opened}: this worker opened the sandbox's container for it;
     * {@code sessionLost}: the container failed and is gone.
     */
    public record FileDone(String jobId, ActorRef<Command> worker, FileReply reply, boolean opened,
                           boolean sessionLost) implements Reply {
    }

    /**
     * The job breaks the operator's policy (a limit above its ceiling, an image or Docker option not
     * allowed): nothing ran and nothing was opened; {@code reason} names the rule. What reaches a worker
     * is checked again here, whoever sent it: the edge is not trusted to have done it.
     */
    public record Refused(String jobId, String reason) implements Reply {
    }

    /** No worker can take the job (sent by placement, not by a worker). Nothing ran. */
    public record NoCapacity(String jobId, String reason) implements Reply {
    }

    /** The worker a job was addressed to is not (or no longer) in the cluster. Nothing ran. */
    public record WorkerGone(String jobId, String worker) implements Reply {
    }

    private record Outcome(ExecutionResult result, boolean failedBeforeRun, boolean sessionLost) {
    }

    /** A job accepted by this worker (queued or running): its output, and what a cancel needs. */
    private static final class Active {
        final Job job;
        final OutputStreamer output;
        volatile Optional<SandboxSession> session = Optional.empty();
        volatile boolean cancelled;
        volatile boolean done;
        /** Its sender said proceed (or it never had to wait for that). */
        boolean mayRun;
        /** A one-off run, closed once its sender has the answer; a cancel reaches it too. */
        volatile Optional<OneOffRun> closeAfterReply = Optional.empty();

        Active(Job job, OutputStreamer output) {
            this.job = job;
            this.output = output;
        }
    }

    /**
     * A file operation handed to the file pool. Exactly one answer goes to its sender: the pool thread's,
     * or the timeout's, whichever marks it first (under the object's lock).
     */
    private static final class FileWork {
        final FileOp op;
        private boolean started;
        private boolean answered;

        FileWork(FileOp op) {
            this.op = op;
        }

        /** The pool thread begins; false when the timeout already answered (it waited too long in the queue). */
        synchronized boolean start() {
            started = !answered;
            return started;
        }

        /** Claims the one answer; false when the other side already gave it. */
        synchronized boolean claimAnswer() {
            if (answered) {
                return false;
            }
            answered = true;
            return true;
        }

        synchronized boolean started() {
            return started;
        }
    }

    /**
     * The worker, restarted with backoff when it fails; its sessions live in {@code sessions} and survive that.
     *
     * @param slots       a pool of at least {@code settings.slots()} threads, for runs only: a job holds one
     *                    while it runs, and the worker never runs more jobs than slots
     * @param fileThreads the file operations' own bounded pool ({@code settings.fileThreads()} threads, a queue
     *                    of {@code settings.fileQueue()}): a stuck file operation never takes a run's thread
     */
    public static Behavior<Command> create(SandboxEngine engine, JobPolicy policy, SessionTable sessions,
                                           ExecutorService slots, FileOperationPool fileThreads, WorkerSettings settings,
                                           OutputSettings outputSettings, ActorRef<Topic.Command<WorkerLoad>> loadTopic) {
        Behavior<Command> worker = Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new ExecutionWorker(ctx, timers, engine, policy, sessions, slots, fileThreads, settings, outputSettings,
                        loadTopic)));
        return Behaviors.supervise(worker).onFailure(SupervisorStrategy.restartWithBackoff(
                settings.restartBackoff().min(), settings.restartBackoff().max(), settings.restartBackoff().randomFactor()));
    }

    private final SandboxEngine engine;
    private final JobPolicy policy;
    private final SessionTable sessions;
    private final ExecutorService slots;
    private final FileOperationPool fileThreads;
    private final WorkerSettings settings;
    private final OutputSettings outputSettings;
    private final ActorRef<Topic.Command<WorkerLoad>> loadTopic;
    private final ExecutionContextExecutor blocking;
    private final Deque<Job> queue = new ArrayDeque<>();
    private final Map<String, Active> active = new HashMap<>();
    /** Started jobs. */
    private int running;
    /** Jobs holding a slot while they wait for their sender's Proceed: they count as running for capacity. */
    private final Set<String> reserved = new HashSet<>();

    private ExecutionWorker(ActorContext<Command> ctx, TimerScheduler<Command> timers, SandboxEngine engine,
                            JobPolicy policy, SessionTable sessions, ExecutorService slots, FileOperationPool fileThreads,
                            WorkerSettings settings, OutputSettings outputSettings,
                            ActorRef<Topic.Command<WorkerLoad>> loadTopic) {
        super(ctx);
        this.engine = engine;
        this.policy = policy;
        this.sessions = sessions;
        this.slots = slots;
        this.fileThreads = fileThreads;
        this.settings = settings;
        this.outputSettings = outputSettings;
        this.loadTopic = loadTopic;
        // Output flushes, cancels and container removal may block on a sandbox or the daemon: never on the
        // default dispatcher, and never on a run's or a file operation's thread.
        this.blocking = ctx.getSystem().dispatchers().lookup(DispatcherSelector.blocking());
        ctx.getSystem().receptionist().tell(Receptionist.register(SERVICE_KEY, ctx.getSelf()));
        timers.startTimerWithFixedDelay(PublishLoad.INSTANCE, settings.loadReportInterval());
        timers.startTimerWithFixedDelay(SweepIdleSessions.INSTANCE, settings.orphanSessionTimeout().dividedBy(4));
        Cluster.get(ctx.getSystem()).subscriptions().tell(org.apache.pekko.cluster.typed.Subscribe.create(
                ctx.messageAdapter(ClusterEvent.MemberRemoved.class, removed -> new NodeRemoved(removed.member().address())),
                ClusterEvent.MemberRemoved.class));
        publishLoad();
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(RunOnce.class, this::onJob)
                .onMessage(RunInSandbox.class, this::onJob)
                .onMessage(JobDone.class, this::onJobDone)
                .onMessage(Proceed.class, this::onProceed)
                .onMessage(ProceedTimedOut.class, timedOut -> dropUnconfirmed(timedOut.jobId(),
                        "its start was not confirmed within " + settings.proceedTimeout()
                                + " (agentexec.cluster.worker.proceed-timeout): its coordinator is gone or its journal is stuck"))
                .onMessage(NodeRemoved.class, this::onNodeRemoved)
                .onMessage(CloseSandbox.class, this::onCloseSandbox)
                .onMessage(CancelJob.class, this::onCancel)
                .onMessage(Subscribe.class, msg -> {
                    Optional.ofNullable(active.get(msg.jobId())).ifPresent(a -> a.output.subscribe(msg.subscriber()));
                    return this;
                })
                .onMessage(WriteFile.class, this::onFileOp)
                .onMessage(ReadFile.class, this::onFileOp)
                .onMessage(FileOpTimedOut.class, this::onFileOpTimedOut)
                .onMessage(GetLoad.class, msg -> {
                    msg.replyTo().tell(load());
                    return this;
                })
                .onMessageEquals(PublishLoad.INSTANCE, () -> {
                    publishLoad();
                    return this;
                })
                .onMessageEquals(SweepIdleSessions.INSTANCE, this::onSweep)
                .build();
    }

    private Behavior<Command> onJob(Job job) {
        Optional<String> violation = violation(job);
        if (violation.isPresent()) {
            log.warn("refused job {} of {}: {}", job.jobId(), job.executionKey(), violation.get());
            job.replyTo().tell(new Refused(job.jobId(), violation.get()));
            return this;
        }
        if (job instanceof RunInSandbox run && !run.openIfMissing() && !sessions.contains(run.sandboxId())) {
            job.replyTo().tell(new SessionMissing(job.jobId()));
            return this;
        }
        if (running + reserved.size() < settings.slots()) {
            accept(job);
            takeSlot(job);
        } else if (queue.size() < settings.queueCapacity()) {
            accept(job);
            queue.addLast(job);
        } else {
            job.replyTo().tell(new Overloaded(job.jobId(), getContext().getSelf(),
                    "all " + settings.slots() + " slots and " + settings.queueCapacity() + " queue places are taken"));
            return this;
        }
        publishLoad();
        return this;
    }

    /** Why the job may not run here, if it breaks the policy: its request, and the container it would open. */
    private Optional<String> violation(Job job) {
        return violation(() -> {
            policy.checkRequest(job.request());
            if (job instanceof RunInSandbox run && !sessions.contains(run.sandboxId())) {
                policy.checkSandbox(run.spec());
            }
        });
    }

    private static Optional<String> violation(Runnable check) {
        try {
            check.run();
            return Optional.empty();
        } catch (InvalidRequestException e) {
            return Optional.of(e.getMessage());
        }
    }

    private void accept(Job job) {
        job.replyTo().tell(new Accepted(job.jobId(), getContext().getSelf()));
        Active accepted = new Active(job, new OutputStreamer(job.executionKey(), job.output(), outputSettings,
                getContext().getSystem().scheduler(), blocking));
        accepted.mayRun = !job.awaitProceed();
        active.put(job.jobId(), accepted);
        if (job.awaitProceed()) {
            getContext().scheduleOnce(settings.proceedTimeout(), getContext().getSelf(), new ProceedTimedOut(job.jobId()));
        }
    }

    /** The job has a slot: it runs now if it may, else it holds the slot until its sender says proceed. */
    private void takeSlot(Job job) {
        if (active.get(job.jobId()).mayRun) {
            start(job);
        } else {
            reserved.add(job.jobId());
        }
    }

    private Behavior<Command> onProceed(Proceed proceed) {
        Active job = active.get(proceed.jobId());
        if (job == null || job.mayRun) {
            return this; // dropped (its answer went out), finished, or told twice
        }
        job.mayRun = true;
        if (reserved.remove(proceed.jobId())) {
            start(job.job);
            publishLoad();
        }
        return this; // queued: it starts when it gets a slot
    }

    /**
     * Drops a job that was never told to proceed: it never ran. Its sender (if it is still there) hears a
     * SANDBOX_ERROR before any run, which it may retry as an attempt that did not run.
     */
    private Behavior<Command> dropUnconfirmed(String jobId, String why) {
        Active job = active.get(jobId);
        if (job == null || job.mayRun) {
            return this;
        }
        active.remove(jobId);
        queue.remove(job.job);
        boolean heldSlot = reserved.remove(jobId);
        job.output.close();
        log.warn("dropped job {} of {} without running it: {}", jobId, job.job.executionKey(), why);
        boolean noContainer = job.job instanceof RunInSandbox run && !sessions.contains(run.sandboxId());
        job.job.replyTo().tell(new Finished(jobId, ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1,
                "the worker dropped the job without running it: " + why, engine.backendName()), true, noContainer));
        if (heldSlot) {
            nextFromQueue();
        }
        publishLoad();
        return this;
    }

    private Behavior<Command> onNodeRemoved(NodeRemoved removed) {
        List.copyOf(active.values()).stream()
                .filter(a -> !a.mayRun && removed.address().equals(a.job.replyTo().path().address()))
                .forEach(a -> dropUnconfirmed(a.job.jobId(), "its coordinator's node " + removed.address()
                        + " left the cluster before it confirmed the start"));
        return this;
    }

    /** A slot came free: the first queued job takes it. */
    private void nextFromQueue() {
        Job next = queue.pollFirst();
        if (next != null) {
            takeSlot(next);
        }
    }

    private void start(Job job) {
        running++;
        job.replyTo().tell(new Started(job.jobId()));
        Active current = active.get(job.jobId());
        CompletableFuture<Outcome> work = CompletableFuture.supplyAsync(() -> run(current), slots);
        getContext().pipeToSelf(work, (outcome, failure) -> new JobDone(job, Objects.requireNonNullElseGet(outcome,
                () -> new Outcome(ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1,
                        "worker failed: " + failure, engine.backendName()), false, false)), current.closeAfterReply));
    }

    private Behavior<Command> onJobDone(JobDone done) {
        running = Math.max(0, running - 1); // a restarted incarnation may see jobs of the one before
        active.remove(done.job().jobId());
        // The answer, then this worker's load, in this order and in one turn: a sender that submits again on
        // hearing it finds the slot free, here and in placement's view.
        done.job().replyTo().tell(new Finished(done.job().jobId(), done.outcome().result(),
                done.outcome().failedBeforeRun(), done.outcome().sessionLost()));
        // A one-off's container goes after the answer, off the actor: the caller never waits for its removal.
        done.closeAfterReply().ifPresent(run -> {
            Runnable close = () -> {
                try {
                    run.close();
                } catch (RuntimeException e) {
                    log.warn("closing the one-off sandbox of {} failed: {}", done.job().executionKey(), e.toString());
                }
            };
            try {
                blocking.execute(close);
            } catch (RejectedExecutionException e) {
                close.run(); // the node is stopping: its pool is gone, the engine's close waits for the removal
            }
        });
        nextFromQueue();
        publishLoad();
        return this;
    }

    private Behavior<Command> onCloseSandbox(CloseSandbox close) {
        // Removing a container blocks on the daemon: off the actor, and off the runs' and file operations' pools.
        CompletableFuture.runAsync(() -> sessions.close(close.sandboxId()), blocking);
        return this;
    }

    private Behavior<Command> onCancel(CancelJob cancel) {
        Active job = active.get(cancel.jobId());
        if (job == null) {
            return this; // unknown, or already finished: its answer is on its way
        }
        job.cancelled = true;
        boolean heldSlot = reserved.remove(cancel.jobId());
        if (heldSlot || queue.remove(job.job)) {
            active.remove(cancel.jobId());
            job.output.close();
            // Nothing ran. A sandbox job that was to open the container leaves none behind.
            boolean noContainer = job.job instanceof RunInSandbox run && !sessions.contains(run.sandboxId());
            job.job.replyTo().tell(new Finished(job.job.jobId(), cancelledBeforeStart(), true, noContainer));
            if (heldSlot) {
                nextFromQueue();
            }
            publishLoad();
            return this;
        }
        repeatCancel(job);
        return this;
    }

    /** Cancels the run until the job ends: a cancel that lands while no block runs (between blocks) is repeated. */
    private void repeatCancel(Active job) {
        if (job.done) {
            return;
        }
        job.session.ifPresent(SandboxSession::cancelRunning);
        job.closeAfterReply.ifPresent(OneOffRun::cancel);
        getContext().getSystem().scheduler().scheduleOnce(settings.cancelRetryInterval(), () -> repeatCancel(job), blocking);
    }

    private ExecutionResult cancelledBeforeStart() {
        return ExecutionResult.refused(Verdict.CANCELLED, 1, "cancelled by the caller before it started; nothing ran",
                engine.backendName());
    }

    private Behavior<Command> onFileOp(FileOp op) {
        if (!op.openIfMissing() && !sessions.contains(op.sandboxId())) {
            op.replyTo().tell(new SessionMissing(op.opId()));
            return this;
        }
        if (!sessions.contains(op.sandboxId())) {
            Optional<String> violation = violation(() -> policy.checkSandbox(op.spec()));
            if (violation.isPresent()) {
                op.replyTo().tell(new FileDone(op.opId(), getContext().getSelf(), new FileReply.Invalid(violation.get()),
                        false, false));
                return this;
            }
        }
        ActorRef<Command> self = getContext().getSelf();
        FileWork work = new FileWork(op);
        // The file operations' own pool: a file operation never takes a run's thread, nor a run a file thread.
        boolean taken = fileThreads.trySubmit(() -> {
            if (work.start()) {
                FileDone done = fileOp(work, self);
                if (work.claimAnswer()) {
                    op.replyTo().tell(done);
                }
            }
        });
        if (!taken) {
            op.replyTo().tell(new FileDone(op.opId(), self, new FileReply.Failed(SandboxFileException.Kind.BUSY,
                    "the worker's file operations are all taken (" + fileThreads.threads() + " running, "
                            + fileThreads.queue() + " waiting: agentexec.cluster.worker.file-threads and "
                            + "agentexec.cluster.worker.file-queue); nothing was done, try again later"), false, false));
            return this;
        }
        getContext().scheduleOnce(settings.fileOpTimeout(), self, new FileOpTimedOut(work));
        return this;
    }

    /**
     * A file operation outlived the file-op-timeout. Still queued: it is dropped, nothing was done. Started:
     * the agent is stuck (or the container hangs), so the sandbox's container is closed as broken (which ends
     * the stuck read) and the sender hears that the workspace is lost.
     */
    private Behavior<Command> onFileOpTimedOut(FileOpTimedOut timedOut) {
        FileWork work = timedOut.work();
        if (!work.claimAnswer()) {
            return this; // answered in time
        }
        FileOp op = work.op;
        ActorRef<Command> self = getContext().getSelf();
        if (!work.started()) {
            // It keeps its queue place until a thread reaches it and start() refuses it: it did wait there.
            op.replyTo().tell(new FileDone(op.opId(), self, new FileReply.Failed(SandboxFileException.Kind.BUSY,
                    "the file operation waited " + settings.fileOpTimeout() + " for a free file thread "
                            + "(agentexec.cluster.worker.file-threads) and was dropped; nothing was done, try again later"),
                    false, false));
            return this;
        }
        log.warn("a file operation on {} in sandbox {} ran longer than {}: closing its container as broken",
                op.path(), op.sandboxId(), settings.fileOpTimeout());
        CompletableFuture.runAsync(() -> sessions.close(op.sandboxId()), blocking);
        op.replyTo().tell(new FileDone(op.opId(), self, new FileReply.Failed(SandboxFileException.Kind.FAILED,
                "the file operation on " + op.path() + " did not finish within " + settings.fileOpTimeout()
                        + " (agentexec.cluster.worker.file-op-timeout); the sandbox's container was closed as broken "
                        + "and its workspace is lost"), false, true));
        return this;
    }

    /** Runs on a file thread: the container's agent answers over its stream. */
    private FileDone fileOp(FileWork work, ActorRef<Command> self) {
        FileOp op = work.op;
        boolean opened = false;
        SandboxSession session;
        Optional<SandboxSession> existing = sessions.find(op.sandboxId());
        if (existing.isPresent()) {
            session = existing.get();
        } else {
            try {
                session = open(op.spec());
            } catch (InvalidRequestException e) {
                return new FileDone(op.opId(), self, new FileReply.Invalid(e.getMessage()), false, false);
            } catch (RuntimeException e) {
                return new FileDone(op.opId(), self, new FileReply.Failed(SandboxFileException.Kind.FAILED,
                        "cannot make a container: " + e.getMessage()), false, false);
            }
            synchronized (work) {
                if (work.answered) {
                    // Timed out while the container was being made: the sender was told it failed; keep nothing.
                    session.close();
                    return new FileDone(op.opId(), self, new FileReply.Failed(SandboxFileException.Kind.FAILED,
                            "timed out while its container was made"), false, true);
                }
                sessions.put(op.sandboxId(), session);
            }
            opened = true;
        }
        FileReply reply;
        boolean broken = false;
        try {
            FaultInjection.beforeFileOperation.accept(op.sandboxId(), op.path());
            if (op instanceof WriteFile write) {
                session.writeFile(write.path(), write.content());
                reply = new FileReply.Written(write.path(), write.content().length);
            } else {
                ReadFile read = (ReadFile) op;
                reply = new FileReply.Content(read.path(), session.readFile(read.path(), read.maxBytes()));
            }
        } catch (InvalidRequestException e) {
            reply = new FileReply.Invalid(e.getMessage());
        } catch (AgentRefusal e) {
            reply = refusal(op.path(), e.getMessage());
        } catch (RuntimeException e) {
            // The agent did not answer in time, or its stream broke: a late answer would be read as the next
            // operation's, so the container cannot be trusted any more.
            reply = new FileReply.Failed(SandboxFileException.Kind.FAILED, "the sandbox's container failed: "
                    + e.getMessage() + "; it was closed as broken and its workspace is lost");
            broken = true;
        }
        sessions.touch(op.sandboxId());
        boolean lost = broken || !session.isUsable();
        if (lost) {
            sessions.close(op.sandboxId());
        }
        return new FileDone(op.opId(), self, reply, opened, lost);
    }

    /** The in-sandbox agent's refusals, told apart by their text (see src/main/c of the sandbox module). */
    private static FileReply refusal(String path, String message) {
        if (message.startsWith("no such file")) {
            return new FileReply.Failed(SandboxFileException.Kind.NOT_FOUND, "no such file in the workspace: " + path);
        }
        if (message.startsWith("file too large")) {
            return new FileReply.Failed(SandboxFileException.Kind.TOO_LARGE, message);
        }
        if (message.startsWith("path escapes") || message.contains("symlink")) {
            return new FileReply.Invalid(message);
        }
        return new FileReply.Failed(SandboxFileException.Kind.FAILED, message);
    }

    private SandboxSession open(SandboxSpec spec) {
        return engine.openSession(spec.image().orElseGet(() -> engine.imageFor(spec.language())), spec.limits(),
                spec.docker().orElseGet(() -> engine.settings().defaultOptions()));
    }

    private Behavior<Command> onSweep() {
        CompletableFuture.runAsync(() -> sessions.closeIdle(settings.orphanSessionTimeout()).forEach(id ->
                log.info("removed the container of sandbox {}: unused for {}", id,
                        settings.orphanSessionTimeout())), blocking);
        return this;
    }

    /** Runs on a slot thread: the engine blocks. */
    private Outcome run(Active job) {
        try {
            if (job.cancelled) {
                // A sandbox job that was to open the container leaves none behind: say so, the binding is void.
                return new Outcome(cancelledBeforeStart(), true,
                        job.job instanceof RunInSandbox run && !sessions.contains(run.sandboxId()));
            }
            if (job.job instanceof RunInSandbox run) {
                return runInSandbox(run, job);
            }
            return runOnce(job);
        } catch (RuntimeException e) {
            return new Outcome(ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, "sandbox failed: " + e,
                    engine.backendName()), false, false);
        } finally {
            job.done = true;
            job.output.close();
        }
    }

    /**
     * The tenant a one-off runs for: its key is {@code TENANT:ID} (ClusterPort.executionKey; tenant ids hold no ':').
     * The engine may run it in a sandbox scrubbed after the same tenant's earlier one-offs, never another's. A key
     * without a tenant (the node's own runs) gets none: its sandbox is removed after it.
     */
    static Optional<String> tenantOf(String executionKey) {
        int colon = executionKey.indexOf(':');
        return colon > 0 ? Optional.of(executionKey.substring(0, colon)) : Optional.empty();
    }

    /** The engine's one-off run, held so that a cancel can reach it, closed once the answer is sent. */
    private Outcome runOnce(Active job) {
        OneOffRun run = engine.oneOff(job.job.request(), tenantOf(job.job.executionKey()));
        // Closed once the answer is sent (see onJobDone), or here if the run throws.
        job.closeAfterReply = Optional.of(run);
        if (job.cancelled) {
            run.cancel();
        }
        try {
            ExecutionResult result = run.execute(job.output);
            job.done = true;
            return new Outcome(result, run.ending().orElseThrow() != OneOffRun.Ending.RAN, false);
        } catch (RuntimeException | Error e) {
            job.closeAfterReply = Optional.empty();
            run.close();
            throw e;
        }
    }

    private Outcome runInSandbox(RunInSandbox run, Active job) {
        SandboxSession session;
        var existing = sessions.find(run.sandboxId());
        if (existing.isPresent()) {
            session = existing.get();
        } else if (run.openIfMissing()) {
            try {
                session = open(run.spec().limits().equals(run.request().limits()) ? run.spec()
                        : new SandboxSpec(run.spec().language(), run.request().limits(), run.spec().image(), run.spec().docker()));
            } catch (SandboxUnavailableException e) {
                return new Outcome(ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1,
                        "cannot make a container: " + e.getMessage(), engine.backendName()), true, true);
            }
            sessions.put(run.sandboxId(), session);
        } else {
            return new Outcome(ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1,
                    "this worker holds no container for sandbox " + run.sandboxId(), engine.backendName()), true, true);
        }
        job.session = Optional.of(session);
        if (job.cancelled) {
            return new Outcome(cancelledBeforeStart(), true, false);
        }
        ExecutionResult result = session.execute(run.request(), job.output);
        job.done = true;
        sessions.touch(run.sandboxId());
        if (!session.isUsable()) {
            sessions.close(run.sandboxId());
            return new Outcome(result, false, true);
        }
        return new Outcome(result, false, false);
    }

    private WorkerLoad load() {
        return new WorkerLoad(getContext().getSelf(), running + reserved.size(), queue.size(), settings.slots(),
                settings.queueCapacity(), sessions.size());
    }

    private void publishLoad() {
        loadTopic.tell(Topic.publish(load()));
    }
}
