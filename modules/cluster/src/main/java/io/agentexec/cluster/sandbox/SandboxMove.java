package io.agentexec.cluster.sandbox;

import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.placement.Placement;
import io.agentexec.cluster.worker.ExecutionWorker;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * A sandbox's move off a draining worker, one at a time: placement picks the worker it goes to, which opens a fresh
 * container, fetches the workspace packed on the draining worker and unpacks it (see
 * {@link ExecutionWorker.AdoptSandbox}). Its entity keeps everything else waiting (stashed) while a move is out, so
 * no run or file operation touches the workspace in between. Persists nothing itself: the answer is a {@link Step} of
 * events ({@code MovedToWorker}, or {@code WorkspaceLost} when it could not move), which the entity records.
 */
final class SandboxMove {

    /**
     * What the entity does with a move's end: record {@code events}; in either case the container left on
     * {@code from} is no longer the sandbox's.
     */
    record Step(List<SandboxEntity.Event> events, String from, boolean moved) {
    }

    private record Pending(String from, String reason) {
    }

    private final String sandboxId;
    private final ActorRef<Placement.Command> placement;
    private final ActorRef<ExecutionWorker.Reply> replies;
    private final Function<ActorRef<?>, String> workerName;
    private final Duration timeout;
    private final OneOperationOut<Pending> out;

    /**
     * @param timedOut   the entity's command saying the move with this id did not end in time
     * @param workerName the name events know a worker by
     * @param timeout    how long the entity waits for the move's end
     */
    SandboxMove(String sandboxId, TimerScheduler<SandboxEntity.Command> timers, ActorRef<Placement.Command> placement,
                ActorRef<ExecutionWorker.Reply> replies, Function<String, SandboxEntity.Command> timedOut,
                Function<ActorRef<?>, String> workerName, Duration timeout) {
        this.sandboxId = sandboxId;
        this.placement = placement;
        this.replies = replies;
        this.workerName = workerName;
        this.timeout = timeout;
        this.out = new OneOperationOut<>(sandboxId, "move", timers, timedOut);
    }

    /** A move is out: executions and file operations wait. */
    boolean busy() {
        return out.busy();
    }

    /** The answer {@code reply} is about the move out. */
    boolean owns(ExecutionWorker.Reply reply) {
        return out.owns(reply);
    }

    /** Moves the sandbox off {@code from} (for {@code reason}); its spec opens the fresh container. */
    void start(String from, SandboxSpec spec, String reason) {
        String opId = out.nextId();
        out.started(opId, new Pending(from, reason), timeout);
        placement.tell(new Placement.SubmitMove(from, opId, sandboxId, spec, replies));
    }

    /** The adopting worker's (or placement's) answer to the move out ({@link #owns} it). */
    Step onReply(ExecutionWorker.Reply reply) {
        Pending move = out.end();
        if (reply instanceof ExecutionWorker.Adopted adopted) {
            return new Step(List.of(new SandboxEntity.MovedToWorker(workerName.apply(adopted.worker()), move.from(),
                    move.reason())), move.from(), true);
        }
        String why;
        if (reply instanceof ExecutionWorker.AdoptFailed failed) {
            why = failed.reason();
        } else if (reply instanceof ExecutionWorker.NoCapacity none) {
            why = none.reason();
        } else if (reply instanceof ExecutionWorker.WorkerGone gone) {
            why = "worker " + gone.worker() + " is no longer in the cluster";
        } else {
            why = reply.toString();
        }
        return lost(move, why);
    }

    /** No answer within the timeout (empty when the move ended meanwhile). */
    Optional<Step> onTimeout(String opId) {
        if (!out.isOut(opId)) {
            return Optional.empty();
        }
        return Optional.of(lost(out.end(), "it did not end within " + timeout
                + " (agentexec.cluster.worker.handover.timeout plus the ask-timeout)"));
    }

    private static Step lost(Pending move, String why) {
        return new Step(List.of(new SandboxEntity.WorkspaceLost("the sandbox could not move off worker " + move.from()
                + " (" + move.reason() + "): " + why + "; the workspace is lost")), move.from(), false);
    }
}
