package io.agentexec.cluster.sandbox;

import io.agentexec.cluster.ClusterSettings.FilesSettings;
import io.agentexec.cluster.api.FileReply;
import io.agentexec.cluster.api.SandboxFileException;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.placement.Placement;
import io.agentexec.cluster.worker.ExecutionWorker;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.Function;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.TimerScheduler;

/**
 * A sandbox's file operations: one at a time, sent to the worker holding its container (or, when it has
 * none, to the best worker, which opens one), each bounded by {@code files.timeout}. Its entity keeps them
 * in order with its executions by stashing either while the other is in progress: a file written before a
 * run is there for it. Persists nothing itself: each answer is a {@link Step} of events and a reply, which
 * the entity records and sends.
 */
final class SandboxFiles {

    /** A file operation the entity was asked for: a write or a read, and who gets the answer. */
    record Request(String path, Optional<byte[]> content, long maxBytes, ActorRef<FileReply> replyTo) {
        static Request write(SandboxEntity.WriteFile write) {
            return new Request(write.path(), Optional.of(write.content()), 0, write.replyTo());
        }

        static Request read(SandboxEntity.ReadFile read) {
            return new Request(read.path(), Optional.empty(), read.maxBytes(), read.replyTo());
        }

        boolean isWrite() {
            return content.isPresent();
        }
    }

    /**
     * What the entity does with an answer: record {@code events}, then either send {@code request} again (a
     * write whose container was lost: a fresh one opens elsewhere) or give {@code reply} to its caller.
     */
    record Step(List<SandboxEntity.Event> events, Request request, Optional<FileReply> reply) {
        boolean resend() {
            return reply.isEmpty();
        }
    }

    private final String sandboxId;
    private final ActorRef<Placement.Command> placement;
    private final ActorRef<ExecutionWorker.Reply> replies;
    private final Function<ActorRef<?>, String> workerName;
    private final FilesSettings settings;
    /** The file operation sent to a worker, waiting for its answer. */
    private final OneOperationOut<Request> out;

    /**
     * @param timedOut   the entity's command saying the operation with this id was not answered in time
     * @param workerName the name events know a worker by
     */
    SandboxFiles(String sandboxId, TimerScheduler<SandboxEntity.Command> timers, ActorRef<Placement.Command> placement,
                 ActorRef<ExecutionWorker.Reply> replies, Function<String, SandboxEntity.Command> timedOut,
                 Function<ActorRef<?>, String> workerName, FilesSettings settings) {
        this.sandboxId = sandboxId;
        this.placement = placement;
        this.replies = replies;
        this.workerName = workerName;
        this.settings = settings;
        this.out = new OneOperationOut<>(sandboxId, "file", timers, timedOut);
    }

    /** An operation is out: executions and other operations wait. */
    boolean busy() {
        return out.busy();
    }

    /** The answer {@code reply} is about the operation out. */
    boolean owns(ExecutionWorker.Reply reply) {
        return out.owns(reply);
    }

    /** What a read of a sandbox without a container answers at once: its files are gone, or there are none yet. */
    static FileReply readWithoutContainer(Request read, Optional<String> workspaceLost) {
        return workspaceLost.<FileReply>map(reason -> new FileReply.Failed(SandboxFileException.Kind.WORKSPACE_LOST,
                        "the sandbox's files are gone: " + reason))
                .orElseGet(() -> new FileReply.Failed(SandboxFileException.Kind.NOT_FOUND,
                        "no such file in the workspace: " + read.path() + " (the sandbox has no files yet)"));
    }

    /** Sends the operation to the sandbox's worker ({@code worker}), or to the best one to open its container. */
    void send(Request request, SandboxSpec spec, Optional<String> worker) {
        String opId = out.nextId();
        boolean openIfMissing = worker.isEmpty();
        ExecutionWorker.FileOp op = request.isWrite()
                ? new ExecutionWorker.WriteFile(opId, sandboxId, spec, openIfMissing, request.path(),
                        request.content().get(), replies)
                : new ExecutionWorker.ReadFile(opId, sandboxId, spec, openIfMissing, request.path(), request.maxBytes(),
                        replies);
        out.started(opId, request, settings.timeout());
        placement.tell(new Placement.SubmitFileOp(worker, op));
    }

    /** The worker's (or placement's) answer to the operation out ({@link #owns} it). */
    Step onReply(ExecutionWorker.Reply reply, Optional<String> worker) {
        Request request = out.end();
        if (reply instanceof ExecutionWorker.FileDone done) {
            List<SandboxEntity.Event> events = new ArrayList<>();
            if (done.opened()) {
                events.add(new SandboxEntity.BoundToWorker(workerName.apply(done.worker())));
            }
            if (done.sessionLost()) {
                events.add(new SandboxEntity.WorkspaceLost("the sandbox's container failed during a file operation"
                        + (done.reply() instanceof FileReply.Failed failed ? ": " + failed.message() : "")));
            }
            return new Step(events, request, Optional.of(done.reply()));
        }
        if (reply instanceof ExecutionWorker.WorkerGone || reply instanceof ExecutionWorker.SessionMissing) {
            String reason = reply instanceof ExecutionWorker.WorkerGone gone
                    ? "worker " + gone.worker() + " is no longer in the cluster; the workspace is lost"
                    : "the sandbox's container is gone from worker " + worker.orElse("?") + "; the workspace is lost";
            List<SandboxEntity.Event> lost = List.of(new SandboxEntity.WorkspaceLost(reason));
            // A write opens a fresh container elsewhere (the next execution announces the loss); a read has nothing to read.
            return request.isWrite() ? new Step(lost, request, Optional.empty())
                    : new Step(lost, request, Optional.of(new FileReply.Failed(SandboxFileException.Kind.WORKSPACE_LOST,
                            "the sandbox's files are gone: " + reason)));
        }
        if (reply instanceof ExecutionWorker.HandedBack) {
            // The worker chosen to open the container is draining (placement had not heard yet): another opens it.
            return new Step(List.of(), request, Optional.empty());
        }
        String why = reply instanceof ExecutionWorker.NoCapacity none ? none.reason() : reply.toString();
        return new Step(List.of(), request, Optional.of(new FileReply.Failed(SandboxFileException.Kind.FAILED,
                "no worker can open the sandbox's container: " + why)));
    }

    /**
     * No answer within {@code files.timeout} (empty when the operation was answered meanwhile). The worker's own
     * file-op-timeout should have answered first: it is unreachable or the container hangs, so the container
     * cannot be trusted: it is closed and the workspace recorded lost.
     */
    Optional<Step> onTimeout(String opId, Optional<String> worker) {
        if (!out.isOut(opId)) {
            return Optional.empty();
        }
        Request request = out.end();
        String message = "the worker did not answer within " + settings.timeout() + " (agentexec.cluster.files.timeout)";
        if (worker.isEmpty()) {
            return Optional.of(new Step(List.of(), request,
                    Optional.of(new FileReply.Failed(SandboxFileException.Kind.FAILED, message))));
        }
        placement.tell(new Placement.CloseOn(worker.get(), sandboxId));
        return Optional.of(new Step(List.of(new SandboxEntity.WorkspaceLost(message + "; the sandbox's container on "
                + worker.get() + " was closed as broken")), request,
                Optional.of(new FileReply.Failed(SandboxFileException.Kind.FAILED,
                        message + "; the sandbox's container was closed as broken and its workspace is lost"))));
    }
}
