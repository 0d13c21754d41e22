package io.agentexec.gateway.cluster;

import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.api.CancelReply;
import io.agentexec.cluster.api.ExecutionReply;
import io.agentexec.cluster.api.SandboxFileException;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.worker.WorkerLoad;
import io.agentexec.gateway.spi.ClusterStatus;
import io.agentexec.gateway.spi.ExecutionOutcome;
import io.agentexec.gateway.spi.ExecutionService;
import io.agentexec.gateway.spi.RunHandle;
import io.agentexec.gateway.spi.SandboxFileError;
import io.agentexec.gateway.spi.SandboxService;
import io.agentexec.gateway.spi.TenantId;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.docker.DockerBackend;
import io.agentexec.sandbox.language.LanguageTable;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The gateway over the agentexec cluster (modules/cluster). Tenancy is in the names: a tenant's
 * sandbox "sbx-1" is the cluster's sandbox "TENANT.sbx-1" and its executions' idempotency keys
 * start with "TENANT:", so another tenant's ids never reach its entities (they are simply absent).
 */
public final class ClusterBackend implements ExecutionService, SandboxService, ClusterStatus, AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ClusterBackend.class);
    /** Pause before asking again to cancel an execution its entity did not know yet. */
    private static final Duration CANCEL_RETRY = Duration.ofMillis(100);
    private final AgentexecCluster cluster;
    private final LanguageTable languages;
    private final Duration askTimeout;
    /** Sandboxes created through this node, per tenant, for the live-sandbox quota. */
    private final Map<TenantId, Set<String>> liveByTenant = new ConcurrentHashMap<>();

    public ClusterBackend(AgentexecCluster cluster, LanguageTable languages, Duration askTimeout) {
        this.cluster = cluster;
        this.languages = languages;
        this.askTimeout = askTimeout;
    }

    static String internalId(TenantId tenant, String sandboxId) {
        return tenant.value() + "." + sandboxId;
    }

    // ---- executions

    @Override
    public boolean streamsOutput() {
        // chunks come from the worker while the code runs (best-effort; the result still holds all output)
        return true;
    }

    @Override
    public RunHandle start(TenantId tenant, Optional<String> sandboxId, ExecutionRequest request, OutputListener listener) {
        String key = tenant.value() + ":" + UUID.randomUUID();
        Optional<String> internal = sandboxId.map(id -> internalId(tenant, id));
        CompletableFuture<ExecutionOutcome> outcome = new CompletableFuture<>();
        // A chunk the worker dropped under load is counted in the next chunk's droppedBefore; the
        // listener gets the bytes that arrived, and the final result carries every byte anyway.
        CompletableFuture<ExecutionReply> reply = cluster.execute(internal, request, key,
                        chunk -> listener.onOutput(chunk.stream(), chunk.data()))
                .toCompletableFuture();
        reply.thenCompose(r -> translate(r, internal))
                .exceptionally(ClusterBackend::failure)
                .thenAccept(outcome::complete);
        // the cluster does not say when a run is admitted; an overload answer comes within the gateway's grace
        CompletableFuture<Void> admitted = CompletableFuture.completedFuture(null);
        return new RunHandle() {
            @Override
            public CompletionStage<Void> admitted() {
                return admitted;
            }

            @Override
            public CompletionStage<ExecutionOutcome> outcome() {
                return outcome;
            }

            @Override
            public boolean cancellable() {
                // the worker kills the run: a one-off's container is removed, a sandbox's run is
                // stopped (SandboxSession.cancelRunning) and the sandbox stays usable
                return true;
            }

            @Override
            public void cancel() {
                if (outcome.complete(new ExecutionOutcome.Cancelled("the execution was cancelled; its run was stopped"))) {
                    cancelInCluster(internal, key, reply, Instant.now().plus(askTimeout));
                }
            }
        };
    }

    /**
     * Asks the cluster to stop the run. Right after {@code execute} the request may not have reached
     * its entity yet (the cluster then answers UNKNOWN): asked again until the entity knows it, the
     * run has answered, or the ask timeout has passed, so a quick cancel is not lost.
     */
    private void cancelInCluster(Optional<String> internal, String key, CompletableFuture<ExecutionReply> reply,
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

    private CompletionStage<ExecutionOutcome> translate(ExecutionReply reply, Optional<String> internal) {
        if (reply instanceof ExecutionReply.Completed c && c.result().verdict() == Verdict.CANCELLED) {
            // only the gateway cancels its keys: a client went away or asked for it
            return CompletableFuture.completedFuture(new ExecutionOutcome.Cancelled(c.result().message()));
        }
        if (reply instanceof ExecutionReply.Completed c) {
            return CompletableFuture.completedFuture(new ExecutionOutcome.Completed(c.result(),
                    c.workspaceLost().map(why -> "the sandbox's earlier workspace was lost (" + why + "); this ran in a fresh one")));
        }
        if (reply instanceof ExecutionReply.Overloaded o) {
            return CompletableFuture.completedFuture(new ExecutionOutcome.Overloaded(o.reason()));
        }
        if (reply instanceof ExecutionReply.SandboxLost l) {
            return CompletableFuture.completedFuture(new ExecutionOutcome.Unavailable(
                    "the worker running the code was lost (" + l.reason() + "); the code may have run"));
        }
        ExecutionReply.Rejected rejected = (ExecutionReply.Rejected) reply;
        if (internal.isEmpty()) {
            return CompletableFuture.completedFuture(new ExecutionOutcome.Rejected(rejected.reason()));
        }
        return cluster.sandbox(internal.get()).thenApply(view -> live(view)
                ? new ExecutionOutcome.Rejected(rejected.reason())
                : new ExecutionOutcome.NotFound("no sandbox " + externalId(internal.get())));
    }

    private static ExecutionOutcome failure(Throwable error) {
        Throwable e = error instanceof java.util.concurrent.CompletionException && error.getCause() != null ? error.getCause() : error;
        if (e instanceof InvalidRequestException) {
            return new ExecutionOutcome.Rejected(e.getMessage());
        }
        return new ExecutionOutcome.Unavailable("the cluster did not answer: " + e.getClass().getSimpleName());
    }

    private static boolean live(SandboxView view) {
        return view.status() == SandboxView.Status.ACTIVE || view.status() == SandboxView.Status.EXPIRED;
    }

    private static String externalId(String internal) {
        return internal.substring(internal.indexOf('.') + 1);
    }

    // ---- sandboxes

    @Override
    public CompletionStage<SandboxInfo> create(TenantId tenant, String language, Limits limits, Optional<String> image) {
        String id = "sbx-" + UUID.randomUUID();
        SandboxSpec spec = SandboxSpec.of(language, limits);
        if (image.isPresent()) {
            spec = spec.withImage(image.get());
        }
        return cluster.createSandbox(internalId(tenant, id), spec).thenApply(view -> {
            liveByTenant.computeIfAbsent(tenant, t -> ConcurrentHashMap.newKeySet()).add(id);
            return new SandboxInfo(id, view.language().orElse(language), status(view));
        });
    }

    private static String status(SandboxView view) {
        return view.status().name().toLowerCase(java.util.Locale.ROOT);
    }

    @Override
    public CompletionStage<Optional<SandboxInfo>> find(TenantId tenant, String sandboxId) {
        return cluster.sandbox(internalId(tenant, sandboxId)).thenApply(view -> live(view)
                ? Optional.of(new SandboxInfo(sandboxId, view.language().orElse(""), status(view)))
                : Optional.<SandboxInfo>empty());
    }

    @Override
    public CompletionStage<Optional<SandboxInfo>> delete(TenantId tenant, String sandboxId) {
        return find(tenant, sandboxId).thenCompose(found -> {
            if (found.isEmpty()) {
                return CompletableFuture.completedFuture(Optional.<SandboxInfo>empty());
            }
            return cluster.closeSandbox(internalId(tenant, sandboxId)).thenApply(view -> {
                Optional.ofNullable(liveByTenant.get(tenant)).ifPresent(s -> s.remove(sandboxId));
                return Optional.of(new SandboxInfo(sandboxId, found.get().language(), "closed"));
            });
        });
    }

    /** Straight to the sandbox's worker, in order with the sandbox's executions. */
    @Override
    public CompletionStage<Optional<Long>> writeFile(TenantId tenant, String sandboxId, String path, byte[] content) {
        return cluster.writeFile(internalId(tenant, sandboxId), path, content)
                .thenApply(done -> Optional.of((long) content.length))
                .exceptionally(error -> noSandboxOrThrow(error, path));
    }

    /**
     * At most {@code maxBytes}, and never more than the cluster moves in one message
     * ({@code agentexec.cluster.files.max-bytes}): a larger file is TOO_LARGE (413), not a bad request.
     */
    @Override
    public CompletionStage<Optional<byte[]>> readFile(TenantId tenant, String sandboxId, String path, long maxBytes) {
        long limit = Math.min(maxBytes, cluster.settings().files().maxBytes());
        return cluster.readFile(internalId(tenant, sandboxId), path, limit)
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

    @Override
    public int liveSandboxes(TenantId tenant) {
        return Optional.ofNullable(liveByTenant.get(tenant)).map(Set::size).orElse(0);
    }

    // ---- status

    @Override
    public String kind() {
        return "cluster";
    }

    @Override
    public CompletionStage<Snapshot> snapshot() {
        Map<String, Integer> warm = cluster.engine().map(e -> e.backend() instanceof DockerBackend d
                ? d.warmPoolSizes() : Map.<String, Integer>of()).orElse(Map.of());
        return cluster.workers().thenApply(workers -> {
            Map<String, Integer> queued = new HashMap<>();
            Map<String, Integer> running = new HashMap<>();
            int sessions = 0;
            for (WorkerLoad w : workers) {
                String name = w.worker().path().address().hostPort() + "/" + w.worker().path().name();
                queued.put(name, w.queued());
                running.put(name, w.running());
                sessions += w.sessions();
            }
            return new Snapshot(!workers.isEmpty(), workers.isEmpty() ? "no worker is reachable yet"
                    : workers.size() + " worker(s) reachable", queued, running, warm, sessions);
        }).exceptionally(e -> new Snapshot(false, "the cluster did not answer", Map.of(), Map.of(), warm, 0));
    }

    @Override
    public void close() {
        cluster.close();
    }
}
