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
import io.agentexec.sandbox.model.Limits;
import java.util.ArrayDeque;
import java.util.ArrayList;
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

    /**
     * Drains this worker (asking again changes nothing): placement stops choosing it at once (its load report says
     * so), the jobs waiting in its queue are handed back ({@link HandedBack}: nothing ran, their entities send them
     * elsewhere), the entities of the sandboxes it holds are told to move them (each answers with
     * {@link CloseSandbox} once its workspace is on another worker), and the runs it has finish. {@code replyTo}
     * hears the report once all of that is done, or at {@code worker.drain-timeout} with what is left.
     */
    public record Drain(ActorRef<DrainReport> replyTo) implements Command {
    }

    public record GetDrainReport(ActorRef<DrainReport> replyTo) implements Command {
    }

    /**
     * Where a worker's drain is: not started (SERVING), under way, done, or given up at the drain timeout; what it
     * still has (running jobs, queued jobs, sandbox containers); what it handed back and released so far; how long
     * it has been draining (or took).
     */
    public record DrainReport(DrainState state, int running, int queued, int sessions, int handedBack,
                              int sandboxesReleased, long elapsedMillis) implements CborSerializable {
        public enum DrainState { SERVING, DRAINING, DRAINED, TIMED_OUT }
    }

    /**
     * Opens a fresh container for the sandbox on this worker and restores its workspace from {@code from} (the
     * draining worker it leaves), then answers {@link Adopted} (this worker holds the sandbox's container from now
     * on) or {@link AdoptFailed} (nothing of it is kept here) to {@code replyTo}. Sent by placement.
     */
    public record AdoptSandbox(String opId, String sandboxId, SandboxSpec spec, ActorRef<Command> from,
                               ActorRef<Reply> replyTo) implements Command {
    }

    /**
     * Packs the sandbox's workspace (tar, inside its container, at most the workspace limit plus the archive
     * overhead) and holds the archive for {@link FetchChunk} until {@link ExportDone} or the handover timeout.
     */
    public record ExportSandbox(String opId, String sandboxId, Limits limits, ActorRef<ExportReply> replyTo)
            implements Command {
    }

    public record FetchChunk(String opId, int index, ActorRef<ExportReply> replyTo) implements Command {
    }

    /** The adopter has the archive, or gave up: it is dropped here. */
    public record ExportDone(String opId) implements Command {
    }

    /** What the worker a sandbox leaves answers the one adopting it. */
    public sealed interface ExportReply extends CborSerializable {
        String opId();
    }

    /** The archive is packed: {@code bytes} long, in {@code chunks} chunks, its SHA-256 in hex. */
    public record Exported(String opId, long bytes, int chunks, String sha256) implements ExportReply {
    }

    public record ExportFailed(String opId, String reason) implements ExportReply {
    }

    public record ArchiveChunk(String opId, int index, byte[] data) implements ExportReply {
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

    /** While draining: announce sandboxes still here again, and see whether the drain is done. */
    private enum DrainTick implements Command { INSTANCE }

    private enum DrainTimedOut implements Command { INSTANCE }

    /** A handover thread packed a workspace (or failed to); {@code released} lets it go once the archive is fetched. */
    private record ExportPacked(ExportSandbox request, Optional<byte[]> archive, String sha256, String failure,
                                CompletableFuture<Void> released) implements Command {
    }

    private record ExportExpired(String opId) implements Command {
    }

    /** A handover thread restored an adopted sandbox ({@code session} present) or failed to ({@code failure}). */
    private record AdoptionEnded(AdoptSandbox adopt, Optional<SandboxSession> session, long archiveBytes,
                                 String failure) implements Command {
    }

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

    /**
     * The worker is draining: it did not take the job or file operation, or dropped the job from its queue before it
     * ran. Nothing ran there; the sender sends it to another worker, counting no failed attempt.
     */
    public record HandedBack(String jobId, ActorRef<Command> worker, String reason) implements Reply {
    }

    /** The sandbox's workspace was restored on {@code worker}, which holds its container from now on. */
    public record Adopted(String jobId, ActorRef<Command> worker, long archiveBytes) implements Reply {
    }

    /** The sandbox could not be moved; nothing of it is kept on the worker that was to adopt it. */
    public record AdoptFailed(String jobId, String reason) implements Reply {
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

    /** A sandbox's workspace packed here for the worker adopting it, until it has fetched it. */
    private record Export(byte[] archive, CompletableFuture<Void> released) {
    }

    /** The drain under way (transient: a restarted incarnation of the actor starts serving again). */
    private static final class Draining {
        final long startedNanos = System.nanoTime();
        final List<ActorRef<DrainReport>> waiters = new ArrayList<>();
        /** When each sandbox still here was last announced to its entity. */
        final Map<String, Long> announced = new HashMap<>();
        int handedBack;
        int released;
        Optional<DrainReport.DrainState> ended = Optional.empty();
        long tookMillis;
    }

    /**
     * Told the id of a sandbox this worker holds and the worker's name when it drains: the sandbox's owner (its
     * entity) is to move it off this worker, or say it does not use it.
     */
    @FunctionalInterface
    public interface SandboxOwners {
        void workerDraining(String sandboxId, String workerName);
    }

    /**
     * The worker, restarted with backoff when it fails; its sessions live in {@code sessions} and survive that.
     *
     * @param slots           a pool of at least {@code settings.slots()} threads, for runs only: a job holds one
     *                        while it runs, and the worker never runs more jobs than slots
     * @param fileThreads     the file operations' own bounded pool ({@code settings.fileThreads()} threads, a queue
     *                        of {@code settings.fileQueue()}): a stuck file operation never takes a run's thread
     * @param handoverThreads {@code settings.handover().threads()} threads packing and unpacking moving sandboxes'
     *                        workspaces (each holds one archive in memory)
     * @param owners          told of every sandbox here when the worker drains
     */
    public static Behavior<Command> create(SandboxEngine engine, JobPolicy policy, SessionTable sessions,
                                           ExecutorService slots, FileOperationPool fileThreads,
                                           ExecutorService handoverThreads, SandboxOwners owners,
                                           WorkerSettings settings, OutputSettings outputSettings,
                                           ActorRef<Topic.Command<WorkerLoad>> loadTopic) {
        Behavior<Command> worker = Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new ExecutionWorker(ctx, timers, engine, policy, sessions, slots, fileThreads, handoverThreads, owners,
                        settings, outputSettings, loadTopic)));
        return Behaviors.supervise(worker).onFailure(SupervisorStrategy.restartWithBackoff(
                settings.restartBackoff().min(), settings.restartBackoff().max(), settings.restartBackoff().randomFactor()));
    }

    private final SandboxEngine engine;
    private final JobPolicy policy;
    private final SessionTable sessions;
    private final ExecutorService slots;
    private final FileOperationPool fileThreads;
    private final ExecutorService handoverThreads;
    private final SandboxOwners owners;
    private final TimerScheduler<Command> timers;
    /** The name entities know this worker by (its path with its node's address). */
    private final String name;
    private final org.apache.pekko.actor.typed.Scheduler scheduler;
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
    private Optional<Draining> draining = Optional.empty();
    private final Map<String, Export> exports = new HashMap<>();
    /** Sandboxes being adopted here (their workspaces being fetched and unpacked). */
    private int adoptions;

    private ExecutionWorker(ActorContext<Command> ctx, TimerScheduler<Command> timers, SandboxEngine engine,
                            JobPolicy policy, SessionTable sessions, ExecutorService slots, FileOperationPool fileThreads,
                            ExecutorService handoverThreads, SandboxOwners owners, WorkerSettings settings,
                            OutputSettings outputSettings, ActorRef<Topic.Command<WorkerLoad>> loadTopic) {
        super(ctx);
        this.engine = engine;
        this.policy = policy;
        this.sessions = sessions;
        this.slots = slots;
        this.fileThreads = fileThreads;
        this.handoverThreads = handoverThreads;
        this.owners = owners;
        this.timers = timers;
        this.name = ctx.getSelf().path().toStringWithAddress(Cluster.get(ctx.getSystem()).selfMember().address());
        this.scheduler = ctx.getSystem().scheduler();
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
                .onMessage(Drain.class, this::onDrain)
                .onMessage(GetDrainReport.class, msg -> {
                    msg.replyTo().tell(drainReport());
                    return this;
                })
                .onMessageEquals(DrainTick.INSTANCE, this::onDrainTick)
                .onMessageEquals(DrainTimedOut.INSTANCE, this::onDrainTimedOut)
                .onMessage(ExportSandbox.class, this::onExport)
                .onMessage(ExportPacked.class, this::onExportPacked)
                .onMessage(FetchChunk.class, this::onFetchChunk)
                .onMessage(ExportDone.class, done -> dropExport(done.opId()))
                .onMessage(ExportExpired.class, expired -> dropExport(expired.opId()))
                .onMessage(AdoptSandbox.class, this::onAdopt)
                .onMessage(AdoptionEnded.class, this::onAdoptionEnded)
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
        if (draining.isPresent()) {
            handBack(job.replyTo(), job.jobId(), "it takes no new work");
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
        checkDrained();
        return this;
    }

    private Behavior<Command> onCloseSandbox(CloseSandbox close) {
        // Removing a container blocks on the daemon: off the actor, and off the runs' and file operations' pools.
        ActorRef<Command> self = getContext().getSelf();
        draining.ifPresent(d -> {
            if (sessions.contains(close.sandboxId())) {
                d.released++;
            }
        });
        boolean drainWaits = draining.isPresent();
        CompletableFuture.runAsync(() -> sessions.close(close.sandboxId()), blocking)
                .whenComplete((done, failure) -> {
                    if (drainWaits) {
                        self.tell(DrainTick.INSTANCE); // the drain may be done now
                    }
                });
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
        if (draining.isPresent() && !sessions.contains(op.sandboxId())) {
            // A draining worker opens no container; one it holds still serves files until its sandbox moves.
            handBack(op.replyTo(), op.opId(), "it opens no new container");
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
                settings.queueCapacity(), sessions.size(), draining.isPresent());
    }

    // ---- drain

    private void handBack(ActorRef<Reply> replyTo, String jobId, String why) {
        draining.ifPresent(d -> d.handedBack++);
        replyTo.tell(new HandedBack(jobId, getContext().getSelf(), "worker " + name
                + " is draining (its node is leaving the cluster): " + why + "; nothing ran there"));
    }

    private Behavior<Command> onDrain(Drain drain) {
        if (draining.isEmpty()) {
            startDraining();
        }
        Draining d = draining.get();
        if (d.ended.isPresent()) {
            drain.replyTo().tell(drainReport());
        } else {
            d.waiters.add(drain.replyTo());
        }
        return this;
    }

    private void startDraining() {
        Draining d = new Draining();
        draining = Optional.of(d);
        // What waits for a slot (or for its Proceed while holding one) never ran: it goes back to placement.
        List<Job> waiting = new ArrayList<>(queue);
        reserved.forEach(id -> Optional.ofNullable(active.get(id)).ifPresent(a -> waiting.add(a.job)));
        log.info("worker {} draining: {} running, {} waiting (handed back to placement), {} sandbox(es) to move",
                name, running, waiting.size(), sessions.size());
        queue.clear();
        reserved.clear();
        for (Job job : waiting) {
            Active dropped = active.remove(job.jobId());
            if (dropped != null) {
                dropped.cancelled = true;
                dropped.output.close();
            }
            handBack(job.replyTo(), job.jobId(), "it dropped the job from its queue");
        }
        publishLoad(); // placement stops choosing it now
        announceSandboxes(d);
        timers.startTimerWithFixedDelay(DrainTick.INSTANCE, settings.loadReportInterval());
        timers.startSingleTimer(DrainTimedOut.INSTANCE, settings.drainTimeout());
        checkDrained();
    }

    /**
     * Tells each sandbox's entity that this worker drains (it moves the sandbox, or says it does not use it here), and
     * again for one still here a whole move's budget later (its entity may have restarted since).
     */
    private void announceSandboxes(Draining d) {
        long now = System.nanoTime();
        for (String id : sessions.ids()) {
            Long last = d.announced.get(id);
            if (last == null || now - last > settings.handover().timeout().toNanos()) {
                d.announced.put(id, now);
                try {
                    owners.workerDraining(id, name);
                } catch (RuntimeException e) {
                    log.warn("could not tell sandbox {} that worker {} drains: {}", id, name, e.toString());
                }
            }
        }
    }

    private Behavior<Command> onDrainTick() {
        draining.filter(d -> d.ended.isEmpty()).ifPresent(d -> {
            announceSandboxes(d);
            checkDrained();
        });
        return this;
    }

    /** Drained: no job runs or waits, no sandbox's container is left, no move in or out is under way. */
    private void checkDrained() {
        if (draining.isEmpty() || draining.get().ended.isPresent()) {
            return;
        }
        if (running == 0 && reserved.isEmpty() && queue.isEmpty() && sessions.size() == 0 && exports.isEmpty()
                && adoptions == 0) {
            Draining d = draining.get();
            endDrain(DrainReport.DrainState.DRAINED);
            log.info("worker {} drained in {} ms: {} job(s) handed back, {} sandbox(es) moved or released",
                    name, d.tookMillis, d.handedBack, d.released);
        }
    }

    private Behavior<Command> onDrainTimedOut() {
        if (draining.isPresent() && draining.get().ended.isEmpty()) {
            endDrain(DrainReport.DrainState.TIMED_OUT);
            log.warn("worker {} did not drain within {} (agentexec.cluster.worker.drain-timeout): {} run(s) still "
                            + "running and {} sandbox(es) still here end as its node leaves (SANDBOX_LOST, or retried "
                            + "elsewhere)", name, settings.drainTimeout(), running, sessions.size());
        }
        return this;
    }

    private void endDrain(DrainReport.DrainState state) {
        Draining d = draining.get();
        d.tookMillis = java.util.concurrent.TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - d.startedNanos);
        d.ended = Optional.of(state);
        timers.cancel(DrainTick.INSTANCE);
        timers.cancel(DrainTimedOut.INSTANCE);
        DrainReport report = drainReport();
        d.waiters.forEach(w -> w.tell(report));
        d.waiters.clear();
    }

    private DrainReport drainReport() {
        if (draining.isEmpty()) {
            return new DrainReport(DrainReport.DrainState.SERVING, running, queue.size() + reserved.size(),
                    sessions.size(), 0, 0, 0);
        }
        Draining d = draining.get();
        long elapsed = d.ended.isPresent() ? d.tookMillis
                : java.util.concurrent.TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - d.startedNanos);
        return new DrainReport(d.ended.orElse(DrainReport.DrainState.DRAINING), running, queue.size() + reserved.size(),
                sessions.size(), d.handedBack, d.released, elapsed);
    }

    // ---- moving a sandbox: the side it leaves

    private Behavior<Command> onExport(ExportSandbox export) {
        Optional<SandboxSession> session = sessions.find(export.sandboxId());
        if (session.isEmpty()) {
            export.replyTo().tell(new ExportFailed(export.opId(), "worker " + name + " holds no container for sandbox "
                    + export.sandboxId()));
            return this;
        }
        ActorRef<Command> self = getContext().getSelf();
        long maxBytes = settings.handover().maxArchiveBytes(export.limits().workspaceBytes());
        java.time.Duration timeout = settings.handover().timeout();
        CompletableFuture<Void> released = new CompletableFuture<>();
        try {
            handoverThreads.execute(() -> {
                Optional<byte[]> archive = Optional.empty();
                String sha = "";
                String failure = "";
                try {
                    archive = Optional.of(session.get().exportWorkspace(export.limits(), maxBytes, timeout));
                    sha = sha256(archive.get());
                } catch (RuntimeException e) {
                    failure = String.valueOf(e.getMessage());
                }
                self.tell(new ExportPacked(export, archive, sha, failure, released));
                if (archive.isPresent()) {
                    // This thread's share of the memory moves take: held until the adopter has the archive.
                    try {
                        released.get(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
                    } catch (Exception stillHeld) {
                        // the export expires on the actor's side at the same time
                    }
                }
            });
        } catch (RejectedExecutionException e) {
            export.replyTo().tell(new ExportFailed(export.opId(), "worker " + name + " is stopping"));
        }
        return this;
    }

    private Behavior<Command> onExportPacked(ExportPacked packed) {
        ExportSandbox export = packed.request();
        if (packed.archive().isEmpty()) {
            log.warn("could not pack the workspace of sandbox {} to move it: {}", export.sandboxId(), packed.failure());
            export.replyTo().tell(new ExportFailed(export.opId(), "packing its workspace on worker " + name
                    + " failed: " + packed.failure()));
            checkDrained();
            return this;
        }
        byte[] archive = packed.archive().get();
        exports.put(export.opId(), new Export(archive, packed.released()));
        getContext().scheduleOnce(settings.handover().timeout(), getContext().getSelf(), new ExportExpired(export.opId()));
        int chunk = settings.handover().chunkBytes();
        int chunks = Math.max(1, (archive.length + chunk - 1) / chunk);
        export.replyTo().tell(new Exported(export.opId(), archive.length, chunks, packed.sha256()));
        return this;
    }

    private Behavior<Command> onFetchChunk(FetchChunk fetch) {
        Export export = exports.get(fetch.opId());
        int chunk = settings.handover().chunkBytes();
        long from = (long) fetch.index() * chunk;
        if (export == null || fetch.index() < 0 || (from >= export.archive().length && from > 0)) {
            fetch.replyTo().tell(new ExportFailed(fetch.opId(), export == null
                    ? "worker " + name + " holds no archive " + fetch.opId() + " (expired after "
                            + settings.handover().timeout() + ", or never packed)"
                    : "no chunk " + fetch.index() + " in archive " + fetch.opId()));
            return this;
        }
        int to = (int) Math.min(export.archive().length, from + chunk);
        fetch.replyTo().tell(new ArchiveChunk(fetch.opId(), fetch.index(),
                java.util.Arrays.copyOfRange(export.archive(), (int) from, to)));
        return this;
    }

    private Behavior<Command> dropExport(String opId) {
        Export export = exports.remove(opId);
        if (export != null) {
            export.released().complete(null);
            checkDrained();
        }
        return this;
    }

    // ---- moving a sandbox: the side it comes to

    private Behavior<Command> onAdopt(AdoptSandbox adopt) {
        if (draining.isPresent()) {
            adopt.replyTo().tell(new AdoptFailed(adopt.opId(), "worker " + name + " is draining too"));
            return this;
        }
        Optional<String> violation = violation(() -> policy.checkSandbox(adopt.spec()));
        if (violation.isPresent()) {
            adopt.replyTo().tell(new AdoptFailed(adopt.opId(), violation.get()));
            return this;
        }
        ActorRef<Command> self = getContext().getSelf();
        try {
            handoverThreads.execute(() -> self.tell(adopt(adopt)));
            adoptions++;
        } catch (RejectedExecutionException e) {
            adopt.replyTo().tell(new AdoptFailed(adopt.opId(), "worker " + name + " is stopping"));
        }
        return this;
    }

    /**
     * Runs on a handover thread: a fresh container, the archive fetched chunk by chunk from the worker the sandbox
     * leaves (checked whole by its length and SHA-256), unpacked inside the container. Within the handover timeout.
     */
    private AdoptionEnded adopt(AdoptSandbox adopt) {
        long deadline = System.nanoTime() + settings.handover().timeout().toNanos();
        SandboxSession session = null;
        try {
            session = open(adopt.spec());
            ExportReply first = ask(adopt.from(), r -> new ExportSandbox(adopt.opId(), adopt.sandboxId(),
                    adopt.spec().limits(), r), deadline);
            if (!(first instanceof Exported exported)) {
                throw new IllegalStateException(first instanceof ExportFailed failed ? failed.reason() : first.toString());
            }
            long max = settings.handover().maxArchiveBytes(adopt.spec().limits().workspaceBytes());
            if (exported.bytes() > max || exported.bytes() > Integer.MAX_VALUE - 8) {
                throw new IllegalStateException("its archive is " + exported.bytes() + " bytes, more than the " + max
                        + " a workspace of this sandbox may take (agentexec.cluster.worker.handover.archive-overhead)");
            }
            byte[] archive = new byte[(int) exported.bytes()];
            int at = 0;
            for (int i = 0; i < exported.chunks(); i++) {
                int index = i;
                ExportReply reply = ask(adopt.from(), r -> new FetchChunk(adopt.opId(), index, r), deadline);
                if (!(reply instanceof ArchiveChunk chunk) || chunk.index() != index
                        || chunk.data().length > archive.length - at) {
                    throw new IllegalStateException("fetching its archive failed at chunk " + index + ": " + reply);
                }
                System.arraycopy(chunk.data(), 0, archive, at, chunk.data().length);
                at += chunk.data().length;
            }
            if (at != archive.length || !sha256(archive).equals(exported.sha256())) {
                throw new IllegalStateException("its archive arrived damaged (" + at + " of " + archive.length + " bytes)");
            }
            session.importWorkspace(archive, adopt.spec().limits(), remaining(deadline));
            return new AdoptionEnded(adopt, Optional.of(session), archive.length, "");
        } catch (RuntimeException e) {
            if (session != null) {
                session.close();
            }
            return new AdoptionEnded(adopt, Optional.empty(), 0, String.valueOf(e.getMessage()));
        } finally {
            adopt.from().tell(new ExportDone(adopt.opId()));
        }
    }

    private Behavior<Command> onAdoptionEnded(AdoptionEnded ended) {
        adoptions = Math.max(0, adoptions - 1);
        AdoptSandbox adopt = ended.adopt();
        if (ended.session().isPresent()) {
            sessions.put(adopt.sandboxId(), ended.session().get());
            log.info("sandbox {} moved to worker {} with its workspace ({} bytes packed)", adopt.sandboxId(), name,
                    ended.archiveBytes());
            adopt.replyTo().tell(new Adopted(adopt.opId(), getContext().getSelf(), ended.archiveBytes()));
            publishLoad();
        } else {
            log.warn("could not move sandbox {} to worker {}: {}", adopt.sandboxId(), name, ended.failure());
            adopt.replyTo().tell(new AdoptFailed(adopt.opId(), "moving it to worker " + name + " failed: "
                    + ended.failure()));
        }
        checkDrained();
        return this;
    }

    private ExportReply ask(ActorRef<Command> target,
                                org.apache.pekko.japi.function.Function<ActorRef<ExportReply>, Command> message,
                                long deadline) {
        java.time.Duration left = remaining(deadline);
        try {
            return org.apache.pekko.actor.typed.javadsl.AskPattern.<Command, ExportReply>ask(target, message, left,
                    scheduler).toCompletableFuture().get(left.toMillis() + 1000, java.util.concurrent.TimeUnit.MILLISECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while fetching the workspace", e);
        } catch (java.util.concurrent.ExecutionException | java.util.concurrent.TimeoutException e) {
            throw new IllegalStateException("the worker it leaves did not answer within the handover timeout ("
                    + settings.handover().timeout() + ", agentexec.cluster.worker.handover.timeout)", e);
        }
    }

    private java.time.Duration remaining(long deadline) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
            throw new IllegalStateException("the move took longer than its handover timeout ("
                    + settings.handover().timeout() + ", agentexec.cluster.worker.handover.timeout)");
        }
        return java.time.Duration.ofNanos(left);
    }

    private static String sha256(byte[] data) {
        try {
            return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(data));
        } catch (java.security.NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    private void publishLoad() {
        loadTopic.tell(Topic.publish(load()));
    }
}
