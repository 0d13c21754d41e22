package io.agentexec.gateway.cluster;

import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.api.ExecutionReply;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.worker.WorkerLoad;
import io.agentexec.gateway.spi.ClusterStatus;
import io.agentexec.gateway.spi.ExecutionOutcome;
import io.agentexec.gateway.spi.ExecutionService;
import io.agentexec.gateway.spi.RunHandle;
import io.agentexec.gateway.spi.SandboxService;
import io.agentexec.gateway.spi.TenantId;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.docker.DockerBackend;
import io.agentexec.sandbox.language.LanguageTable;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import io.agentexec.sandbox.model.WorkspaceFile;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The gateway over the agentexec cluster (modules/cluster). Tenancy is in the names: a tenant's
 * sandbox "sbx-1" is the cluster's sandbox "TENANT.sbx-1" and its executions' idempotency keys
 * start with "TENANT:", so another tenant's ids never reach its entities (they are simply absent).
 */
public final class ClusterBackend implements ExecutionService, SandboxService, ClusterStatus, AutoCloseable {
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
        // the cluster answers with the whole result; output reaches callers at the end
        return false;
    }

    @Override
    public RunHandle start(TenantId tenant, Optional<String> sandboxId, ExecutionRequest request, OutputListener listener) {
        String key = tenant.value() + ":" + UUID.randomUUID();
        Optional<String> internal = sandboxId.map(id -> internalId(tenant, id));
        CompletableFuture<ExecutionOutcome> outcome = cluster.execute(internal, request, key)
                .thenCompose(reply -> translate(reply, internal))
                .exceptionally(ClusterBackend::failure)
                .toCompletableFuture();
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
                return false;
            }

            @Override
            public void cancel() {
                // the cluster has no cancel yet: the run's own timeout ends it
            }
        };
    }

    private CompletionStage<ExecutionOutcome> translate(ExecutionReply reply, Optional<String> internal) {
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
        if (image.isPresent()) {
            return CompletableFuture.failedFuture(new InvalidRequestException(
                    "the cluster backend creates sandboxes in their language's image; 'image' is not supported here yet"));
        }
        String id = "sbx-" + UUID.randomUUID();
        return cluster.createSandbox(internalId(tenant, id), language, limits).thenApply(view -> {
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

    /** A file goes in as a files-only execution in the sandbox. */
    @Override
    public CompletionStage<Optional<Long>> writeFile(TenantId tenant, String sandboxId, String path, byte[] content) {
        String internal = internalId(tenant, sandboxId);
        return cluster.sandbox(internal).thenCompose(view -> {
            if (!live(view)) {
                return CompletableFuture.completedFuture(Optional.<Long>empty());
            }
            Limits limits = view.limits().orElseThrow(() -> new IllegalStateException("an active sandbox has limits"));
            ExecutionRequest request = ExecutionRequest.builder(limits).file(new WorkspaceFile(path, content)).build();
            return cluster.execute(Optional.of(internal), request, tenant.value() + ":" + UUID.randomUUID())
                    .thenApply(reply -> {
                        if (reply instanceof ExecutionReply.Completed c && c.result().verdict() == Verdict.OK) {
                            return Optional.of((long) content.length);
                        }
                        if (reply instanceof ExecutionReply.Completed c && c.result().verdict() == Verdict.POLICY_VIOLATION) {
                            throw new InvalidRequestException(c.result().message());
                        }
                        throw new IllegalStateException("the sandbox did not take the file: " + reply.status());
                    });
        });
    }

    @Override
    public CompletionStage<Optional<byte[]>> readFile(TenantId tenant, String sandboxId, String path, long maxBytes) {
        return CompletableFuture.failedFuture(new UnsupportedOperationException(
                "reading files out of a sandbox needs a file-read operation in modules/cluster; the engine backend has it"));
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
