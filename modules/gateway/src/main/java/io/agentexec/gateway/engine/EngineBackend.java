package io.agentexec.gateway.engine;

import io.agentexec.gateway.spi.ClusterStatus;
import io.agentexec.gateway.spi.ExecutionOutcome;
import io.agentexec.gateway.spi.ExecutionService;
import io.agentexec.gateway.spi.RunHandle;
import io.agentexec.gateway.spi.SandboxFileError;
import io.agentexec.gateway.spi.SandboxService;
import io.agentexec.gateway.spi.TenantId;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.SandboxSession;
import io.agentexec.sandbox.agent.AgentRefusal;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.model.CodeBlock;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The gateway over the bare sandbox engine in this JVM: a single node without the cluster (no
 * persistence, no retries). Bounded like a cluster worker: {@code slots} runs at once, {@code queue}
 * waiting, anything past that is refused at once as overloaded.
 */
public final class EngineBackend implements ExecutionService, SandboxService, ClusterStatus, AutoCloseable {
    private static final String WORKER_NAME = "local";

    private record SandboxKey(TenantId tenant, String sandboxId) { }

    private record LiveSandbox(SandboxSession session, String language) { }

    private final SandboxEngine engine;
    private final int slots;
    private final int capacity;
    private final ExecutorService slotThreads;
    /** Container starts and file copies block; they must not hold an execution slot. */
    private final ExecutorService blockingCalls = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "agentexec-gateway-io");
        t.setDaemon(true);
        return t;
    });
    private final AtomicInteger admitted = new AtomicInteger();
    private final AtomicInteger running = new AtomicInteger();
    private final Map<SandboxKey, LiveSandbox> sandboxes = new ConcurrentHashMap<>();
    private final AtomicBoolean closed = new AtomicBoolean();

    public EngineBackend(SandboxEngine engine, int slots, int queue) {
        if (slots < 1 || queue < 0) {
            throw new IllegalArgumentException("engine slots must be at least 1 and queue at least 0");
        }
        this.engine = engine;
        this.slots = slots;
        this.capacity = slots + queue;
        this.slotThreads = Executors.newFixedThreadPool(slots, r -> {
            Thread t = new Thread(r, "agentexec-gateway-slot");
            t.setDaemon(true);
            return t;
        });
    }

    public SandboxEngine engine() {
        return engine;
    }

    // ---- executions

    @Override
    public boolean streamsOutput() {
        return true;
    }

    @Override
    public RunHandle start(TenantId tenant, String executionId, Optional<String> sandboxId, ExecutionRequest request,
                           OutputListener listener) {
        CompletableFuture<Void> admission = new CompletableFuture<>();
        CompletableFuture<ExecutionOutcome> outcome = new CompletableFuture<>();
        AtomicReference<SandboxSession> oneOff = new AtomicReference<>();
        AtomicBoolean cancelled = new AtomicBoolean();
        boolean cancellable = sandboxId.isEmpty();
        RunHandle handle = new RunHandle() {
            @Override
            public CompletionStage<Void> admitted() {
                return admission;
            }

            @Override
            public CompletionStage<ExecutionOutcome> outcome() {
                return outcome;
            }

            @Override
            public boolean cancellable() {
                return cancellable;
            }

            @Override
            public void cancel() {
                // A sandbox's run is not cancelled: that would take its workspace; its timeout bounds it.
                if (cancellable && !outcome.isDone() && cancelled.compareAndSet(false, true)) {
                    outcome.complete(new ExecutionOutcome.Cancelled("the client went away; the run was stopped"));
                    SandboxSession session = oneOff.getAndSet(null);
                    if (session != null) {
                        session.close();
                    }
                }
            }
        };
        if (closed.get()) {
            outcome.complete(new ExecutionOutcome.Unavailable("the node is shutting down"));
            return handle;
        }
        Optional<LiveSandbox> sandbox = sandboxId.map(id -> sandboxes.get(new SandboxKey(tenant, id)));
        if (sandboxId.isPresent() && sandbox.isEmpty()) {
            outcome.complete(new ExecutionOutcome.NotFound("no sandbox " + sandboxId.get()));
            return handle;
        }
        if (admitted.incrementAndGet() > capacity) {
            admitted.decrementAndGet();
            outcome.complete(new ExecutionOutcome.Overloaded("all " + slots + " slots and the queue of "
                    + (capacity - slots) + " are taken"));
            return handle;
        }
        admission.complete(null);
        slotThreads.execute(() -> {
            running.incrementAndGet();
            try {
                if (outcome.isDone()) {
                    return;
                }
                if (sandbox.isPresent()) {
                    outcome.complete(new ExecutionOutcome.Completed(sandbox.get().session().execute(request, listener),
                            Optional.empty()));
                } else {
                    runOneOff(request, listener, outcome, oneOff, cancelled);
                }
            } catch (RuntimeException e) {
                outcome.complete(new ExecutionOutcome.Unavailable("the engine failed: " + e.getMessage()));
            } finally {
                running.decrementAndGet();
                admitted.decrementAndGet();
            }
        });
        return handle;
    }

    private void runOneOff(ExecutionRequest request, OutputListener listener, CompletableFuture<ExecutionOutcome> outcome,
                           AtomicReference<SandboxSession> holder, AtomicBoolean cancelled) {
        String firstLanguage = request.blocks().stream().map(CodeBlock::language).findFirst().orElse("python");
        String image = request.image().orElseGet(() -> engine.imageFor(firstLanguage));
        SandboxSession session;
        try {
            session = engine.openSession(image, request.limits(), engine.settings().defaultOptions());
        } catch (SandboxUnavailableException e) {
            outcome.complete(new ExecutionOutcome.Unavailable("no sandbox could be made: " + e.getMessage()));
            return;
        }
        holder.set(session);
        if (cancelled.get()) {
            session.close();
            return;
        }
        try {
            outcome.complete(new ExecutionOutcome.Completed(session.execute(request, listener), Optional.empty()));
        } finally {
            if (holder.getAndSet(null) != null) {
                session.close();
            }
        }
    }

    // ---- sandboxes

    @Override
    public CompletionStage<SandboxInfo> create(TenantId tenant, String id, String language, Limits limits,
                                               Optional<String> image) {
        return CompletableFuture.supplyAsync(() -> {
            String canonical = engine.language(language)
                    .orElseThrow(() -> new InvalidRequestException("unknown language '" + language + "'")).name();
            SandboxSession session = engine.openSession(image.orElseGet(() -> engine.imageFor(canonical)), limits,
                    engine.settings().defaultOptions());
            sandboxes.put(new SandboxKey(tenant, id), new LiveSandbox(session, canonical));
            return new SandboxInfo(id, canonical, "active");
        }, blockingCalls);
    }

    @Override
    public CompletionStage<Optional<SandboxInfo>> find(TenantId tenant, String sandboxId) {
        return CompletableFuture.completedFuture(Optional.ofNullable(sandboxes.get(new SandboxKey(tenant, sandboxId)))
                .map(s -> new SandboxInfo(sandboxId, s.language(), s.session().isUsable() ? "active" : "broken")));
    }

    @Override
    public CompletionStage<Optional<SandboxInfo>> delete(TenantId tenant, String sandboxId) {
        LiveSandbox removed = sandboxes.remove(new SandboxKey(tenant, sandboxId));
        if (removed == null) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        return CompletableFuture.supplyAsync(() -> {
            removed.session().close();
            return Optional.of(new SandboxInfo(sandboxId, removed.language(), "closed"));
        }, blockingCalls);
    }

    @Override
    public CompletionStage<Optional<Long>> writeFile(TenantId tenant, String sandboxId, String path, byte[] content) {
        LiveSandbox sandbox = sandboxes.get(new SandboxKey(tenant, sandboxId));
        if (sandbox == null) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        return CompletableFuture.supplyAsync(() -> {
            sandbox.session().writeFile(path, content);
            return Optional.of((long) content.length);
        }, blockingCalls);
    }

    @Override
    public CompletionStage<Optional<byte[]>> readFile(TenantId tenant, String sandboxId, String path, long maxBytes) {
        LiveSandbox sandbox = sandboxes.get(new SandboxKey(tenant, sandboxId));
        if (sandbox == null) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        return CompletableFuture.supplyAsync(() -> {
            try {
                return Optional.of(sandbox.session().readFile(path, maxBytes));
            } catch (AgentRefusal refusal) {
                // the in-sandbox agent's refusals, told apart by their text (src/main/c of modules/sandbox)
                String why = String.valueOf(refusal.getMessage());
                if (why.startsWith("no such file")) {
                    throw new SandboxFileError(SandboxFileError.Kind.NOT_FOUND, "no file " + path + " in the workspace");
                }
                if (why.startsWith("file too large")) {
                    throw new SandboxFileError(SandboxFileError.Kind.TOO_LARGE, why);
                }
                if (why.startsWith("path escapes") || why.contains("symlink")) {
                    throw new InvalidRequestException(why);
                }
                throw refusal;
            }
        }, blockingCalls);
    }

    // ---- status

    @Override
    public String kind() {
        return "engine";
    }

    @Override
    public CompletionStage<Snapshot> snapshot() {
        int runningNow = running.get();
        int queued = Math.max(0, admitted.get() - runningNow);
        Map<String, Integer> warm = engine.warmPoolSizes();
        // Sandbox runtimes that failed their health check at engine start are refused; say so here too.
        List<String> runtimeProblems = engine.runtimeProblems();
        return CompletableFuture.completedFuture(new Snapshot(!closed.get(),
                closed.get() ? "shutting down" : "engine backend " + engine.backendName()
                        + (runtimeProblems.isEmpty() ? "" : "; " + String.join("; ", runtimeProblems)),
                Map.of(WORKER_NAME, queued), Map.of(WORKER_NAME, runningNow), warm, sandboxes.size()));
    }

    /** Runs in flight or queued. */
    public int inFlight() {
        return admitted.get();
    }

    @Override
    public void close() {
        if (closed.compareAndSet(false, true)) {
            slotThreads.shutdownNow();
            blockingCalls.shutdownNow();
            sandboxes.values().forEach(s -> s.session().close());
            sandboxes.clear();
            engine.close();
        }
    }
}
