package io.agentexec.cluster.port;

import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.api.CancelReply;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxFileException;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.api.TenantScope;
import io.agentexec.cluster.port.quota.SandboxQuota;
import io.agentexec.cluster.worker.WorkerLoad;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.language.LanguageTable;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.InvalidRequestException;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The execution port over the agentexec cluster. Tenancy is in the names: a tenant's sandbox "sbx-1" is the
 * cluster's sandbox "TENANT.sbx-1" ({@link TenantScope}) and its execution "exe-1" has the idempotency key
 * "TENANT:exe-1", so another tenant's ids never reach its entities (they are simply absent). Because the key is made
 * from the id alone, any node finds a one-off execution in the cluster's event-sourced ExecutionEntity, whichever
 * node took it, and after that node is gone; a run in a sandbox has an id that names the sandbox too
 * ({@link ExecutionIds}), and is found in the sandbox's entity, which remembers its recent runs' outcomes. A
 * tenant's sandboxes count against its live-sandbox quota, one sharded entity per tenant.
 */
public final class ClusterPort implements ExecutionPort {
    private static final Logger log = LoggerFactory.getLogger(ClusterPort.class);
    /** Pause before asking again to cancel an execution its entity did not know yet. */
    private static final Duration CANCEL_RETRY = Duration.ofMillis(100);
    /** A sandbox frees up when its owner deletes it; there is no better guess at when that is. */
    private static final Duration SANDBOX_QUOTA_RETRY = Duration.ofSeconds(10);
    private final AgentexecCluster cluster;
    private final LanguageTable languages;
    private final Duration askTimeout;
    private final SandboxQuota quota;
    private final Duration visibilityPollMin;
    private final Duration visibilityPollMax;

    /**
     * @param visibilityPollMin the first pause before {@link RunHandle#visible()} asks the execution's entity whether
     *                          it has the run yet (the request may still be on its way there); it doubles up to
     * @param visibilityPollMax this
     */
    public ClusterPort(AgentexecCluster cluster, LanguageTable languages, Duration askTimeout, SandboxQuota quota,
                       Duration visibilityPollMin, Duration visibilityPollMax) {
        this.cluster = cluster;
        this.languages = languages;
        this.askTimeout = askTimeout;
        this.quota = quota;
        this.visibilityPollMin = visibilityPollMin;
        this.visibilityPollMax = visibilityPollMax;
    }

    /** The cluster's id of the caller's sandbox. */
    static String internalId(Caller caller, String sandboxId) {
        return caller.tenant().map(tenant -> TenantScope.scoped(tenant, sandboxId)).orElse(sandboxId);
    }

    /** The cluster's idempotency key of the caller's execution: the same on every node. */
    static String executionKey(Caller caller, String executionId) {
        return caller.tenant().map(tenant -> tenant + ":" + executionId).orElse(executionId);
    }

    // ---- executions

    @Override
    public boolean streamsOutput() {
        // chunks come from the worker while the code runs (best-effort; the result still holds all output)
        return true;
    }

    @Override
    public RunHandle start(Caller caller, String executionId, Optional<String> sandboxId, ExecutionRequest request,
                           OutputListener listener) {
        String key = executionKey(caller, executionId);
        Optional<String> internal = sandboxId.map(id -> internalId(caller, id));
        CompletableFuture<ExecutionOutcome> outcome = new CompletableFuture<>();
        try {
            caller.policy().check(request, languages);
        } catch (InvalidRequestException e) {
            outcome.complete(new ExecutionOutcome.Rejected(key, e.getMessage()));
            return StartedRun.finished(outcome);
        }
        // A chunk the worker dropped under load is counted in the next chunk's droppedBefore; the
        // listener gets the bytes that arrived, and the final result carries every byte anyway.
        CompletableFuture<io.agentexec.cluster.api.ExecutionOutcome> reply = cluster.execute(internal, request, key,
                        chunk -> listener.onOutput(chunk.stream(), chunk.data()))
                .toCompletableFuture();
        reply.thenCompose(r -> translate(r, internal))
                .exceptionally(error -> failure(key, error))
                .thenAccept(outcome::complete);
        caller.tenant().ifPresent(tenant -> sandboxId.ifPresent(id -> reply.thenAccept(r -> {
            // A sandbox whose slot was given back when it expired holds a container again: count it again.
            if (r instanceof io.agentexec.cluster.api.ExecutionOutcome.Completed c && c.workspaceLost().isPresent()) {
                quota.readmit(tenant, id);
            }
        })));
        // the cluster does not say when a run is admitted; an overload answer comes within the gateway's grace
        CompletableFuture<Void> admitted = CompletableFuture.completedFuture(null);
        // a run in a sandbox whose id names it is found by other nodes in the sandbox's entity
        Optional<String> recordedIn = internal.filter(sandbox ->
                ExecutionIds.sandboxOf(executionId).map(id -> internalId(caller, id)).equals(Optional.of(sandbox)));
        // A refusal that comes once the run was announced (its caller may have been told 202) is recorded
        // in the sandbox, so that every node reads that end. Checked when either happens, whichever is last.
        AtomicBoolean announced = new AtomicBoolean();
        AtomicBoolean recorded = new AtomicBoolean();
        Runnable recordLateRefusal = () -> recordedIn.ifPresent(sandbox -> {
            io.agentexec.cluster.api.ExecutionOutcome r = reply.isDone() && !reply.isCompletedExceptionally() ? reply.join() : null;
            if (r instanceof io.agentexec.cluster.api.ExecutionOutcome.Overloaded o && announced.get() && recorded.compareAndSet(false, true)) {
                cluster.recordRefusal(sandbox, key, o.reason()).whenComplete((done, error) -> {
                    if (error != null) {
                        log.warn("recording the refusal of execution {} in sandbox {} failed: {}", key, sandbox, error.toString());
                    }
                });
            }
        });
        reply.thenRun(recordLateRefusal);
        return new StartedRun(admitted, outcome) {
            @Override
            public CompletionStage<Void> visible() {
                if (internal.isPresent() && recordedIn.isEmpty()) {
                    return admitted; // an id that names no sandbox of ours: the run is refused as not found
                }
                CompletableFuture<Void> known = new CompletableFuture<>();
                awaitKnown(recordedIn, key, outcome, known, visibilityPollMin, Instant.now().plus(askTimeout));
                return known.thenRun(() -> {
                    announced.set(true);
                    recordLateRefusal.run();
                });
            }

            @Override
            public boolean cancellable() {
                // the worker kills the run: a one-off's container is removed, a sandbox's run is
                // stopped (SandboxSession.cancelRunning) and the sandbox stays usable
                return true;
            }

            @Override
            public void cancel() {
                if (outcome.complete(ExecutionOutcome.Completed.cancelled(key, "cluster"))) {
                    cancelInCluster(internal, key, reply, Instant.now().plus(askTimeout));
                }
            }
        };
    }

    /**
     * Completes {@code known} once every node can find the run, its outcome is in (then the caller
     * answers that outcome, never an id), or the ask timeout has passed; asked after a growing pause,
     * because the request may not have reached its entity
     * yet (placement is asked first). A one-off must be accepted by a worker (the entity then owes it
     * a recorded end): one only being dispatched may still be refused as overloaded, which the entity
     * does not record, and its caller then gets that refusal rather than an id that ends in nothing.
     * A run in a sandbox is found once its sandbox has it (waiting, dispatching, running or ended);
     * a refusal after that is recorded there (see {@link #start}).
     */
    private void awaitKnown(Optional<String> sandbox, String key, CompletableFuture<ExecutionOutcome> outcome,
                            CompletableFuture<Void> known, Duration pause, Instant giveUp) {
        CompletableFuture.delayedExecutor(pause.toMillis(), TimeUnit.MILLISECONDS).execute(() ->
                cluster.execution(sandbox, key).whenComplete((view, error) -> {
                    boolean found = error == null && (view.accepted() || view.outcome().isPresent()
                            || (sandbox.isPresent() && view.dispatching()));
                    if (found || outcome.isDone() || Instant.now().isAfter(giveUp)) {
                        known.complete(null);
                        return;
                    }
                    Duration next = pause.multipliedBy(2);
                    awaitKnown(sandbox, key, outcome, known,
                            next.compareTo(visibilityPollMax) > 0 ? visibilityPollMax : next, giveUp);
                }));
    }

    /**
     * Asks the cluster to stop the run. Right after {@code execute} the request may not have reached
     * its entity yet (the cluster then answers UNKNOWN): asked again until the entity knows it, the
     * run has answered, or the ask timeout has passed, so a quick cancel is not lost.
     */
    private void cancelInCluster(Optional<String> internal, String key, CompletableFuture<io.agentexec.cluster.api.ExecutionOutcome> reply,
                                 Instant giveUp) {
        cluster.cancel(internal, key).whenComplete((answer, error) -> {
            if (error != null) {
                log.warn("cancelling execution {} failed: {}", key, error.toString());
                return;
            }
            if (answer.outcome() == CancelReply.Outcome.UNKNOWN && !reply.isDone() && Instant.now().isBefore(giveUp)) {
                CompletableFuture.delayedExecutor(CANCEL_RETRY.toMillis(), TimeUnit.MILLISECONDS)
                        .execute(() -> cancelInCluster(internal, key, reply, giveUp));
                return;
            }
            log.debug("cancel of execution {}: {} ({})", key, answer.outcome(), answer.message());
        });
    }

    /** A refusal from the cluster about a sandbox that is not (any more) the caller's reads as NotFound. */
    private CompletionStage<ExecutionOutcome> translate(ExecutionOutcome reply, Optional<String> internal) {
        if (!(reply instanceof ExecutionOutcome.Rejected rejected) || internal.isEmpty()) {
            return CompletableFuture.completedFuture(reply);
        }
        return cluster.sandbox(internal.get()).thenApply(view -> live(view) ? reply
                : new ExecutionOutcome.NotFound(rejected.executionKey(), "no sandbox " + externalId(internal.get())));
    }

    // ---- executions other nodes took: one-offs in their ExecutionEntity, runs in a sandbox (their id names it) in
    // the sandbox's entity

    /** Where the cluster keeps the execution with this id: its sandbox's entity, or none (a one-off's own). */
    private static Optional<String> sandboxOf(Caller caller, String executionId) {
        return ExecutionIds.sandboxOf(executionId).map(id -> internalId(caller, id));
    }

    @Override
    public CompletionStage<Optional<ExecutionView>> lookup(Caller caller, String executionId) {
        Optional<String> sandbox = sandboxOf(caller, executionId);
        return cluster.execution(sandbox, executionKey(caller, executionId))
                .thenCompose(view -> {
                    if (view.outcome().isPresent()) {
                        return translate(view.outcome().get(), sandbox).thenApply(o -> Optional.of(ExecutionView.ended(o)));
                    }
                    return CompletableFuture.completedFuture(view.accepted() || view.dispatching()
                            ? Optional.of(ExecutionView.running()) : Optional.<ExecutionView>empty());
                })
                .exceptionally(error -> {
                    if (unwrap(error) instanceof InvalidRequestException) {
                        return Optional.empty(); // not an id made here: nothing by that name
                    }
                    throw new CompletionException(unwrap(error));
                });
    }

    /**
     * Follows the run to its end. The cluster's wait is bounded (every attempt of the longest run the caller may
     * have): a run still going after it (one that waited long behind others in its sandbox) is followed again.
     */
    @Override
    public CompletionStage<ExecutionOutcome> follow(Caller caller, String executionId, OutputListener listener) {
        Optional<String> sandbox = sandboxOf(caller, executionId);
        String key = executionKey(caller, executionId);
        return cluster.follow(sandbox, key, caller.policy().ceilings().timeout(),
                        chunk -> listener.onOutput(chunk.stream(), chunk.data()))
                .thenCompose(reply -> reply instanceof io.agentexec.cluster.api.ExecutionOutcome.NotFound
                        || reply instanceof io.agentexec.cluster.api.ExecutionOutcome.Rejected
                        // a taken run is never rejected (nor is a rejection kept): the cluster knows no such key
                        ? CompletableFuture.completedFuture((ExecutionOutcome) new ExecutionOutcome.NotFound(key,
                                "no execution " + executionId))
                        : translate(reply, sandbox))
                .exceptionallyCompose(error -> {
                    Throwable e = unwrap(error);
                    if (e instanceof InvalidRequestException) {
                        return CompletableFuture.completedFuture(new ExecutionOutcome.NotFound(key, "no execution " + executionId));
                    }
                    if (e instanceof java.util.concurrent.TimeoutException) {
                        return lookup(caller, executionId).thenCompose(known -> known.isPresent() && known.get().outcome().isEmpty()
                                ? follow(caller, executionId, listener)
                                : CompletableFuture.completedFuture(known.flatMap(ExecutionView::outcome).orElseGet(() ->
                                        new ExecutionOutcome.NotFound(key, "no execution " + executionId))));
                    }
                    return CompletableFuture.completedFuture(failure(key, error));
                });
    }

    @Override
    public CompletionStage<Optional<ExecutionView>> cancel(Caller caller, String executionId, Duration wait) {
        Optional<String> sandbox = sandboxOf(caller, executionId);
        String key = executionKey(caller, executionId);
        return cluster.cancel(sandbox, key).thenCompose(answer -> {
            if (answer.outcome() == CancelReply.Outcome.UNKNOWN) {
                return CompletableFuture.completedFuture(Optional.<ExecutionView>empty());
            }
            if (answer.outcome() == CancelReply.Outcome.ALREADY_FINISHED) {
                return lookup(caller, executionId);
            }
            // the worker stops the run; its one terminal reply (CANCELLED unless it ended first) follows soon
            return cluster.follow(sandbox, key, wait, chunk -> { }).toCompletableFuture()
                    .completeOnTimeout(null, wait.toMillis(), TimeUnit.MILLISECONDS)
                    .thenCompose(reply -> reply == null ? lookup(caller, executionId)
                            : translate(reply, sandbox).thenApply(o -> Optional.of(ExecutionView.ended(o))));
        }).exceptionally(error -> {
            if (unwrap(error) instanceof InvalidRequestException) {
                return Optional.empty();
            }
            throw new CompletionException(unwrap(error));
        });
    }

    private static Throwable unwrap(Throwable error) {
        Throwable e = error;
        while (e instanceof CompletionException && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    /** The port's answer when the cluster could not be asked: refused if the request was bad, else unknown. */
    private static ExecutionOutcome failure(String key, Throwable error) {
        Throwable e = unwrap(error);
        if (e instanceof InvalidRequestException) {
            return new ExecutionOutcome.Rejected(key, e.getMessage());
        }
        return new ExecutionOutcome.SandboxLost(key, "the cluster did not answer: " + e.getClass().getSimpleName(),
                List.of(), false);
    }

    private static boolean live(SandboxView view) {
        return view.status() == SandboxView.Status.ACTIVE || view.status() == SandboxView.Status.EXPIRED;
    }

    private static String externalId(String internal) {
        return internal.substring(internal.indexOf('.') + 1);
    }

    // ---- sandboxes

    @Override
    public CompletionStage<SandboxInfo> createSandbox(Caller caller, String sandboxId, SandboxSpec spec) {
        try {
            caller.policy().checkSandbox(spec.image(), spec.limits(), languages);
        } catch (InvalidRequestException e) {
            return CompletableFuture.failedFuture(e);
        }
        String internal = internalId(caller, sandboxId);
        if (caller.tenant().isEmpty()) {
            return cluster.createSandbox(internal, spec).thenApply(view -> info(sandboxId, view, spec.language()));
        }
        String tenant = caller.tenant().get();
        return quota.reserve(tenant, sandboxId, caller.maxLiveSandboxes()).thenCompose(decision -> {
            if (decision instanceof SandboxQuota.Refused refused) {
                throw new QuotaExceededException("tenant " + tenant + " holds " + refused.held() + " live sandboxes, its "
                        + "maximum of " + caller.maxLiveSandboxes() + "; delete one first", SANDBOX_QUOTA_RETRY);
            }
            return cluster.createSandbox(internal, spec)
                    .thenApply(view -> info(sandboxId, view, spec.language()))
                    .whenComplete((info, error) -> {
                        if (error != null) {
                            release(tenant, sandboxId);
                        }
                    });
        });
    }

    private static SandboxInfo info(String sandboxId, SandboxView view, String language) {
        return new SandboxInfo(sandboxId, view.language().orElse(language), status(view));
    }

    private static String status(SandboxView view) {
        return view.status().name().toLowerCase(java.util.Locale.ROOT);
    }

    /** Never fails: a release that does not get through is freed when the quota next finds the sandbox closed. */
    private CompletionStage<Void> release(String tenant, String sandboxId) {
        return quota.release(tenant, sandboxId).exceptionally(error -> {
            log.warn("giving back the quota slot of sandbox {} of tenant {} failed: {}", sandboxId, tenant, error.toString());
            return null;
        });
    }

    @Override
    public CompletionStage<Optional<SandboxInfo>> sandbox(Caller caller, String sandboxId) {
        return cluster.sandbox(internalId(caller, sandboxId)).thenApply(view -> live(view)
                ? Optional.of(info(sandboxId, view, ""))
                : Optional.<SandboxInfo>empty());
    }

    @Override
    public CompletionStage<Optional<SandboxInfo>> deleteSandbox(Caller caller, String sandboxId) {
        return sandbox(caller, sandboxId).thenCompose(found -> {
            if (found.isEmpty()) {
                return CompletableFuture.completedFuture(Optional.<SandboxInfo>empty());
            }
            return cluster.closeSandbox(internalId(caller, sandboxId))
                    .thenCompose(view -> caller.tenant().map(tenant -> release(tenant, sandboxId))
                            .orElseGet(() -> CompletableFuture.completedFuture(null)))
                    .thenApply(released -> Optional.of(new SandboxInfo(sandboxId, found.get().language(), "closed")));
        });
    }

    /** Straight to the sandbox's worker, in order with the sandbox's executions. */
    @Override
    public CompletionStage<Optional<Long>> writeFile(Caller caller, String sandboxId, String path, byte[] content) {
        return cluster.writeFile(internalId(caller, sandboxId), path, content)
                .thenApply(done -> Optional.of((long) content.length))
                .exceptionally(error -> noSandboxOrThrow(error, path));
    }

    /**
     * At most {@code maxBytes}, and never more than the cluster moves in one message
     * ({@code agentexec.cluster.files.max-bytes}): a larger file is TOO_LARGE (413), not a bad request.
     */
    @Override
    public CompletionStage<Optional<byte[]>> readFile(Caller caller, String sandboxId, String path, long maxBytes) {
        long limit = Math.min(maxBytes, cluster.settings().files().maxBytes());
        return cluster.readFile(internalId(caller, sandboxId), path, limit)
                .thenApply(Optional::of)
                .exceptionally(error -> noSandboxOrThrow(error, path));
    }

    /** Empty for a sandbox the tenant does not have; the protocols' errors for the rest. */
    private static <T> Optional<T> noSandboxOrThrow(Throwable error, String path) {
        Throwable e = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
        if (e instanceof SandboxFileException file) {
            switch (file.kind()) {
                case NO_SANDBOX:
                    return Optional.empty();
                case NOT_FOUND:
                    throw new SandboxFileError(SandboxFileError.Kind.NOT_FOUND, "no file " + path + " in the workspace");
                case WORKSPACE_LOST:
                    throw new SandboxFileError(SandboxFileError.Kind.NOT_FOUND, "no file " + path
                            + ": the sandbox's workspace was lost with its container (" + file.getMessage() + ")");
                case TOO_LARGE:
                    throw new SandboxFileError(SandboxFileError.Kind.TOO_LARGE, file.getMessage());
                default:
                    throw new SandboxFileError(SandboxFileError.Kind.UNAVAILABLE, file.getMessage());
            }
        }
        if (e instanceof InvalidRequestException invalid) {
            throw invalid;
        }
        throw new SandboxFileError(SandboxFileError.Kind.UNAVAILABLE, "the cluster did not answer: "
                + e.getClass().getSimpleName());
    }

    // ---- status

    @Override
    public String kind() {
        return "cluster";
    }

    @Override
    public CompletionStage<PortStatus> status() {
        Map<String, Integer> warm = cluster.engine().map(SandboxEngine::warmPoolSizes).orElse(Map.of());
        return cluster.workers().thenApply(workers -> {
            Map<String, Integer> queued = new HashMap<>();
            Map<String, Integer> running = new HashMap<>();
            int sessions = 0;
            Optional<PortStatus.WorkerGauges> own = Optional.empty();
            org.apache.pekko.actor.Address self = org.apache.pekko.cluster.typed.Cluster.get(cluster.system()).selfMember().address();
            for (WorkerLoad w : workers) {
                org.apache.pekko.actor.Address at = w.worker().path().address();
                if (!at.hasGlobalScope() || at.equals(self)) {
                    own = Optional.of(new PortStatus.WorkerGauges(w.slots(), w.running(), w.queued()));
                }
                String name = workerLabel(w);
                queued.put(name, w.queued());
                running.put(name, w.running());
                sessions += w.sessions();
            }
            // This node's sandbox runtimes that failed their health check at engine start are refused; say so.
            List<String> runtimeProblems = cluster.engine().map(SandboxEngine::runtimeProblems).orElse(List.of());
            return new PortStatus(!workers.isEmpty(), (workers.isEmpty() ? "no worker is reachable yet"
                    : workers.size() + " worker(s) reachable")
                    + (runtimeProblems.isEmpty() ? "" : "; " + String.join("; ", runtimeProblems))
                    + cluster.engine().map(e -> "; this worker's blocks start as " + e.startPath()).orElse(""),
                    queued, running, warm, sessions, own);
        }).exceptionally(e -> new PortStatus(false, "the cluster did not answer", Map.of(), Map.of(), warm, 0, Optional.empty()));
    }

    /**
     * A worker's metric label, the same on every node: host:port and actor name. A local actor's path
     * carries no host, so this node's own cluster address stands in for it.
     */
    private String workerLabel(WorkerLoad w) {
        org.apache.pekko.actor.Address address = w.worker().path().address().host().isDefined()
                ? w.worker().path().address()
                : org.apache.pekko.cluster.typed.Cluster.get(cluster.system()).selfMember().address();
        String hostPort = address.host().isDefined() && address.port().isDefined()
                ? address.host().get() + ":" + address.port().get()
                : address.hostPort();
        return hostPort + "/" + w.worker().path().name();
    }

    /** The node belongs to whoever started it: the port holds nothing of its own. */
    @Override
    public void close() {
    }
}
