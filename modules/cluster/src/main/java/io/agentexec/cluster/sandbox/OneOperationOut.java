package io.agentexec.cluster.sandbox;

import io.agentexec.cluster.worker.ExecutionWorker;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.ThreadLocalRandom;
import java.util.function.Function;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * The one operation a sandbox's helper ({@link SandboxFiles}, {@link SandboxMove}) has out at a time: its id (which
 * the worker's answer carries), what the helper keeps about it, and the timer that ends it when no answer comes.
 * Shared so that both helpers keep their operations the same way.
 *
 * @param <T> what the helper keeps about the operation until it ends
 */
final class OneOperationOut<T> {
    private record Out<T>(String opId, T about) {
    }

    private final String sandboxId;
    private final String kind;
    private final TimerScheduler<SandboxEntity.Command> timers;
    private final Function<String, SandboxEntity.Command> timedOut;
    private Optional<Out<T>> out = Optional.empty();

    /**
     * @param kind     names the operations in their ids ({@code SANDBOX/KIND/RANDOM}) and their timer
     * @param timedOut the entity's command saying the operation with this id did not end in time
     */
    OneOperationOut(String sandboxId, String kind, TimerScheduler<SandboxEntity.Command> timers,
                    Function<String, SandboxEntity.Command> timedOut) {
        this.sandboxId = sandboxId;
        this.kind = kind;
        this.timers = timers;
        this.timedOut = timedOut;
    }

    /** The id the next operation goes out under. */
    String nextId() {
        return sandboxId + "/" + kind + "/" + Long.toHexString(ThreadLocalRandom.current().nextLong());
    }

    /** The operation {@code opId} is out, about {@code about}; it times out after {@code timeout}. */
    void started(String opId, T about, Duration timeout) {
        out = Optional.of(new Out<>(opId, about));
        timers.startSingleTimer(kind, timedOut.apply(opId), timeout);
    }

    /** An operation is out. */
    boolean busy() {
        return out.isPresent();
    }

    /** The answer {@code reply} is about the operation out. */
    boolean owns(ExecutionWorker.Reply reply) {
        return isOut(reply.jobId());
    }

    /** {@code opId} is the operation out (a timeout of one that ended meanwhile is not). */
    boolean isOut(String opId) {
        return out.filter(o -> o.opId().equals(opId)).isPresent();
    }

    /** Ends the operation out: its timer is cancelled; returns what the helper kept about it. */
    T end() {
        timers.cancel(kind);
        T about = out.orElseThrow().about();
        out = Optional.empty();
        return about;
    }
}
