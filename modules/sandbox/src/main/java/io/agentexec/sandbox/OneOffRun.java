package io.agentexec.sandbox;

import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.SandboxOptions;
import io.agentexec.sandbox.model.Verdict;
import java.util.Optional;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledFuture;

/**
 * One request in a sandbox of its own, which no other request shares while it runs (AG2's per-call container): the
 * engine's one path for "pick the image, open a session, run, close" ({@link SandboxEngine#oneOff}). A one-off for an
 * owner (the cluster's tenant) may run in a sandbox that served the same owner's earlier one-offs and was scrubbed
 * since, and gives its own back the same way when its run ended cleanly (Docker, {@code docker.recycle}); any other
 * sandbox is removed afterwards.
 *
 * <p>{@link #execute} blocks the calling thread and may be called once. {@link #cancel} may come from any thread at
 * any time: before the sandbox exists nothing runs; during the run every process of it is killed (verdict
 * CANCELLED), repeated until the run ends so that a cancel landing between two blocks still stops it. {@link #close}
 * ends the sandbox; its container is removed in the background (the Docker backend's removal pool), so a caller
 * answers first and closes after. Closing during {@link #execute} ends the sandbox under the run (SANDBOX_ERROR).
 */
public final class OneOffRun implements AutoCloseable {
    /** How {@link #execute} ended. */
    public enum Ending {
        /** The request ran in the sandbox; its result says how. */
        RAN,
        /** No sandbox could be made (the daemon, the image, the runtime): nothing ran. */
        NO_SANDBOX,
        /** A cancel (or close) came before the run began: nothing ran. */
        CANCELLED_BEFORE_START
    }

    private final SandboxEngine engine;
    private final ExecutionRequest request;
    private final SandboxOptions options;
    private final Optional<String> owner;
    private final Object lock = new Object();
    /** All guarded by {@link #lock}. */
    private SandboxSession session;
    private boolean started;
    private boolean cancelled;
    private boolean closed;
    private boolean finished;
    private Optional<ScheduledFuture<?>> repeatedCancel = Optional.empty();
    /** The result of a run that ended (guarded by {@link #lock}): what decides whether its sandbox may be recycled. */
    private ExecutionResult ran;
    private volatile Optional<Ending> ending = Optional.empty();

    OneOffRun(SandboxEngine engine, ExecutionRequest request, SandboxOptions options, Optional<String> owner) {
        this.engine = engine;
        this.request = request;
        this.options = options;
        this.owner = owner;
    }

    /**
     * Opens the sandbox (the request's image, else its first block's language's), runs the request in it and returns
     * its result. No sandbox: a SANDBOX_ERROR result naming why. Cancelled first: a CANCELLED result, nothing ran.
     *
     * @throws IllegalStateException when called a second time
     */
    public ExecutionResult execute(OutputListener listener) {
        synchronized (lock) {
            if (started) {
                throw new IllegalStateException("a one-off run executes once");
            }
            started = true;
            if (cancelled || closed) {
                return end(Ending.CANCELLED_BEFORE_START, cancelledBeforeStart());
            }
        }
        SandboxSession opened;
        try {
            opened = engine.openSession(engine.imageFor(request), request.limits(), options, owner);
        } catch (SandboxUnavailableException e) {
            return end(Ending.NO_SANDBOX, ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, e.getMessage(),
                    engine.backendName()));
        }
        boolean closeNow;
        boolean stop;
        synchronized (lock) {
            session = opened;
            // A close during the opening found no sandbox to end: this one is ended here.
            closeNow = closed;
            stop = cancelled || closed;
        }
        if (closeNow) {
            opened.close();
        }
        if (stop) {
            return end(Ending.CANCELLED_BEFORE_START, cancelledBeforeStart());
        }
        try {
            // A one-off: no pre-initialised interpreter is started after its last block (it would die with the sandbox).
            ExecutionResult result = opened.executeLast(request, listener);
            synchronized (lock) {
                ran = result;
            }
            ending = Optional.of(Ending.RAN);
            return result;
        } finally {
            synchronized (lock) {
                finished = true;
                repeatedCancel.ifPresent(f -> f.cancel(false));
            }
        }
    }

    /**
     * Stops the run, from any thread: before it began, nothing will run; while it runs, every process of it is killed
     * now and again every {@code agentexec.sandbox.cancel-retry-interval} until the run ends. Idempotent.
     */
    public void cancel() {
        SandboxSession current;
        synchronized (lock) {
            cancelled = true;
            if (finished || session == null) {
                return;
            }
            current = session;
            if (repeatedCancel.isEmpty()) {
                try {
                    repeatedCancel = Optional.of(engine.repeatEvery(engine.settings().cancelRetryInterval(),
                            current::cancelRunning));
                } catch (RejectedExecutionException e) {
                    // the engine is closing: its sandboxes end with it
                }
            }
        }
        current.cancelRunning();
    }

    /** How {@link #execute} ended; empty until it returned (or when it threw). */
    public Optional<Ending> ending() {
        return ending;
    }

    /**
     * Ends the run's use of its sandbox, if one was made: a sandbox that may be recycled (its run ended cleanly, see
     * {@link SandboxSession#release}) is scrubbed now and kept for the owner's next one-off; any other ends, its
     * container removed in the background. Idempotent.
     */
    @Override
    public void close() {
        SandboxSession current;
        ExecutionResult result;
        synchronized (lock) {
            if (closed) {
                return;
            }
            closed = true;
            current = session;
            // Only a run that ended before this close may leave its sandbox to another: a close during the run ends it.
            result = finished ? ran : null;
            repeatedCancel.ifPresent(f -> f.cancel(false));
        }
        if (current == null) {
            return;
        }
        if (result != null && owner.isPresent()) {
            current.release(result, request);
        } else {
            current.close();
        }
    }

    private ExecutionResult end(Ending how, ExecutionResult result) {
        synchronized (lock) {
            finished = true;
        }
        ending = Optional.of(how);
        return result;
    }

    private ExecutionResult cancelledBeforeStart() {
        return ExecutionResult.refused(Verdict.CANCELLED, 1, "cancelled by the caller before it started; nothing ran",
                engine.backendName());
    }
}
