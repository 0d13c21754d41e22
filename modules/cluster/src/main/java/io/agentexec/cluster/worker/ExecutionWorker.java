package io.agentexec.cluster.worker;

import io.agentexec.cluster.CborSerializable;
import io.agentexec.cluster.ClusterSettings.WorkerSettings;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.SandboxSession;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Verdict;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;
import org.apache.pekko.actor.typed.pubsub.Topic;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

/**
 * The one owner of this node's sandbox engine. A fixed number of slots run engine calls on their
 * own threads; a bounded queue holds what waits; past both a job is refused at once with
 * {@link Overloaded}, so no mailbox ever grows without bound. Registers with the Receptionist and
 * publishes its load for placement.
 */
public final class ExecutionWorker extends AbstractBehavior<ExecutionWorker.Command> {

    public static final ServiceKey<Command> SERVICE_KEY = ServiceKey.create(Command.class, "agentexec-execution-worker");

    public sealed interface Command extends CborSerializable {
    }

    /** Work that takes a slot. {@code jobId} correlates the answers; it is unique per attempt. */
    public sealed interface Job extends Command {
        String jobId();

        ExecutionRequest request();

        ActorRef<Reply> replyTo();
    }

    /** Runs a request in a fresh container that is removed afterwards. */
    public record RunOnce(String jobId, ExecutionRequest request, ActorRef<Reply> replyTo) implements Job {
    }

    /**
     * Runs a request in the sandbox's container on this worker. When this worker holds no container
     * for the sandbox it opens one if {@code openIfMissing}, else answers {@link SessionMissing}.
     */
    public record RunInSandbox(String jobId, String sandboxId, String language, ExecutionRequest request,
                               boolean openIfMissing, ActorRef<Reply> replyTo) implements Job {
    }

    /** Removes the sandbox's container, if this worker holds one. */
    public record CloseSandbox(String sandboxId) implements Command {
    }

    public record GetLoad(ActorRef<WorkerLoad> replyTo) implements Command {
    }

    private record JobDone(Job job, Outcome outcome) implements Command {
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

    /** The job holds a slot or a queue place; {@link Finished} follows. */
    public record Accepted(String jobId, ActorRef<Command> worker) implements Reply {
    }

    /** The job left the queue and its code is about to run. */
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

    /** No worker can take the job (sent by placement, not by a worker). Nothing ran. */
    public record NoCapacity(String jobId, String reason) implements Reply {
    }

    /** The worker a job was addressed to is not (or no longer) in the cluster. Nothing ran. */
    public record WorkerGone(String jobId, String worker) implements Reply {
    }

    private record Outcome(ExecutionResult result, boolean failedBeforeRun, boolean sessionLost) {
    }

    /** The worker, restarted with backoff when it fails; its sessions live in {@code sessions} and survive that. */
    public static Behavior<Command> create(SandboxEngine engine, SessionTable sessions, ExecutorService slots,
                                           WorkerSettings settings, ActorRef<Topic.Command<WorkerLoad>> loadTopic) {
        Behavior<Command> worker = Behaviors.setup(ctx -> Behaviors.withTimers(timers ->
                new ExecutionWorker(ctx, timers, engine, sessions, slots, settings, loadTopic)));
        return Behaviors.supervise(worker).onFailure(SupervisorStrategy.restartWithBackoff(
                settings.restartBackoff().min(), settings.restartBackoff().max(), settings.restartBackoff().randomFactor()));
    }

    private final SandboxEngine engine;
    private final SessionTable sessions;
    private final ExecutorService slots;
    private final WorkerSettings settings;
    private final ActorRef<Topic.Command<WorkerLoad>> loadTopic;
    private final Deque<Job> queue = new ArrayDeque<>();
    private int running;

    private ExecutionWorker(ActorContext<Command> ctx, TimerScheduler<Command> timers, SandboxEngine engine,
                            SessionTable sessions, ExecutorService slots, WorkerSettings settings,
                            ActorRef<Topic.Command<WorkerLoad>> loadTopic) {
        super(ctx);
        this.engine = engine;
        this.sessions = sessions;
        this.slots = slots;
        this.settings = settings;
        this.loadTopic = loadTopic;
        ctx.getSystem().receptionist().tell(Receptionist.register(SERVICE_KEY, ctx.getSelf()));
        timers.startTimerWithFixedDelay(PublishLoad.INSTANCE, settings.loadReportInterval());
        timers.startTimerWithFixedDelay(SweepIdleSessions.INSTANCE, settings.orphanSessionTimeout().dividedBy(4));
        publishLoad();
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(RunOnce.class, this::onJob)
                .onMessage(RunInSandbox.class, this::onJob)
                .onMessage(JobDone.class, this::onJobDone)
                .onMessage(CloseSandbox.class, this::onCloseSandbox)
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
        if (job instanceof RunInSandbox run && !run.openIfMissing() && !sessions.contains(run.sandboxId())) {
            job.replyTo().tell(new SessionMissing(job.jobId()));
            return this;
        }
        if (running < settings.slots()) {
            job.replyTo().tell(new Accepted(job.jobId(), getContext().getSelf()));
            start(job);
        } else if (queue.size() < settings.queueCapacity()) {
            job.replyTo().tell(new Accepted(job.jobId(), getContext().getSelf()));
            queue.addLast(job);
        } else {
            job.replyTo().tell(new Overloaded(job.jobId(), getContext().getSelf(),
                    "all " + settings.slots() + " slots and " + settings.queueCapacity() + " queue places are taken"));
            return this;
        }
        publishLoad();
        return this;
    }

    private void start(Job job) {
        running++;
        job.replyTo().tell(new Started(job.jobId()));
        CompletableFuture<Outcome> work = CompletableFuture.supplyAsync(() -> run(job), slots);
        getContext().pipeToSelf(work, (outcome, failure) -> new JobDone(job, Objects.requireNonNullElseGet(outcome,
                () -> new Outcome(ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1,
                        "worker failed: " + failure, engine.backendName()), false, false))));
    }

    private Behavior<Command> onJobDone(JobDone done) {
        running = Math.max(0, running - 1); // a restarted incarnation may see jobs of the one before
        done.job().replyTo().tell(new Finished(done.job().jobId(), done.outcome().result(),
                done.outcome().failedBeforeRun(), done.outcome().sessionLost()));
        Job next = queue.pollFirst();
        if (next != null) {
            start(next);
        }
        publishLoad();
        return this;
    }

    private Behavior<Command> onCloseSandbox(CloseSandbox close) {
        // Removing a container blocks on the daemon: do it on a slot thread without taking a slot.
        CompletableFuture.runAsync(() -> sessions.close(close.sandboxId()), slots);
        return this;
    }

    private Behavior<Command> onSweep() {
        CompletableFuture.runAsync(() -> sessions.closeIdle(settings.orphanSessionTimeout()).forEach(id ->
                getContext().getLog().info("removed the container of sandbox {}: unused for {}", id,
                        settings.orphanSessionTimeout())), slots);
        return this;
    }

    /** Runs on a slot thread: the engine blocks. */
    private Outcome run(Job job) {
        try {
            if (job instanceof RunInSandbox run) {
                return runInSandbox(run);
            }
            ExecutionResult result = engine.execute(job.request());
            return new Outcome(result, false, false);
        } catch (RuntimeException e) {
            return new Outcome(ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, "sandbox failed: " + e,
                    engine.backendName()), false, false);
        }
    }

    private Outcome runInSandbox(RunInSandbox run) {
        SandboxSession session;
        var existing = sessions.find(run.sandboxId());
        if (existing.isPresent()) {
            session = existing.get();
        } else if (run.openIfMissing()) {
            try {
                session = engine.openSession(run.language(), run.request().limits());
            } catch (SandboxUnavailableException e) {
                return new Outcome(ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1,
                        "cannot make a container: " + e.getMessage(), engine.backendName()), true, true);
            }
            sessions.put(run.sandboxId(), session);
        } else {
            return new Outcome(ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1,
                    "this worker holds no container for sandbox " + run.sandboxId(), engine.backendName()), true, true);
        }
        ExecutionResult result = session.execute(run.request());
        sessions.touch(run.sandboxId());
        if (!session.isUsable()) {
            sessions.close(run.sandboxId());
            return new Outcome(result, false, true);
        }
        return new Outcome(result, false, false);
    }

    private WorkerLoad load() {
        return new WorkerLoad(getContext().getSelf(), running, queue.size(), settings.slots(),
                settings.queueCapacity(), sessions.size());
    }

    private void publishLoad() {
        loadTopic.tell(Topic.publish(load()));
    }
}
