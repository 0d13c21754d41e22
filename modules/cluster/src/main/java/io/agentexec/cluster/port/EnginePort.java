package io.agentexec.cluster.port;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.port.quota.LocalSandboxQuota;
import io.agentexec.cluster.port.quota.SandboxQuota;
import io.agentexec.sandbox.OneOffRun;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.SandboxSession;
import io.agentexec.sandbox.agent.AgentRefusal;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.model.CodeBlock;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.InvalidRequestException;
import java.time.Duration;
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
 * The execution port over the bare sandbox engine in this JVM: a single node without the cluster (no persistence, no
 * retries; runs are found only by the caller that started them). Bounded like a cluster worker: {@code slots} runs
 * at once, {@code queue} waiting, anything past that is refused at once as overloaded. The same policy and
 * live-sandbox quota as the cluster's port, in this JVM's memory.
 */
public final class EnginePort implements ExecutionPort {
    private static final String WORKER_NAME = "local";
    private static final String KIND = "engine";
    /** A sandbox frees up when its owner deletes it; there is no better guess at when that is. */
    private static final Duration SANDBOX_QUOTA_RETRY = Duration.ofSeconds(10);

    private record SandboxKey(Optional<String> tenant, String sandboxId) { }

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
    private final SandboxQuota quota = new LocalSandboxQuota();

    public EnginePort(SandboxEngine engine, int slots, int queue) {
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
    public RunHandle start(Caller caller, String executionId, Optional<String> sandboxId, ExecutionRequest request,
                           OutputListener listener) {
        CompletableFuture<Void> admission = new CompletableFuture<>();
        CompletableFuture<ExecutionOutcome> outcome = new CompletableFuture<>();
        // A one-off runs in the engine's one-off path, which a cancel from another thread stops; a sandbox's run
        // is not cancelled: that would take its workspace; its timeout bounds it.
        Optional<OneOffRun> oneOff = sandboxId.isEmpty() ? Optional.of(engine.oneOff(request)) : Optional.empty();
        boolean cancellable = oneOff.isPresent();
        RunHandle handle = new StartedRun(admission, outcome) {
            @Override
            public boolean cancellable() {
                return cancellable;
            }

            @Override
            public void cancel() {
                if (cancellable && outcome.complete(ExecutionOutcome.Completed.cancelled(executionId, engine.backendName()))) {
                    oneOff.get().close();
                }
            }
        };
        outcome.whenComplete((o, e) -> oneOff.ifPresent(OneOffRun::close)); // its container goes in the background
        if (closed.get()) {
            outcome.complete(lost(executionId, "the node is shutting down"));
            return handle;
        }
        try {
            caller.policy().check(request, engine.settings().languages());
        } catch (InvalidRequestException e) {
            outcome.complete(new ExecutionOutcome.Rejected(executionId, e.getMessage()));
            return handle;
        }
        Optional<LiveSandbox> sandbox = sandboxId.map(id -> sandboxes.get(new SandboxKey(caller.tenant(), id)));
        if (sandboxId.isPresent() && sandbox.isEmpty()) {
            outcome.complete(new ExecutionOutcome.NotFound(executionId, "no sandbox " + sandboxId.get()));
            return handle;
        }
        if (admitted.incrementAndGet() > capacity) {
            admitted.decrementAndGet();
            outcome.complete(new ExecutionOutcome.Overloaded(executionId, "all " + slots + " slots and the queue of "
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
                    outcome.complete(completed(executionId, sandbox.get().session().execute(request, listener)));
                } else {
                    ExecutionResult result = oneOff.get().execute(listener);
                    outcome.complete(oneOff.get().ending().filter(e -> e == OneOffRun.Ending.NO_SANDBOX).isPresent()
                            ? lost(executionId, "no sandbox could be made: " + result.message())
                            : completed(executionId, result));
                }
            } catch (RuntimeException e) {
                outcome.complete(lost(executionId, "the engine failed: " + e.getMessage()));
            } finally {
                running.decrementAndGet();
                admitted.decrementAndGet();
            }
        });
        return handle;
    }

    private static ExecutionOutcome completed(String executionId, ExecutionResult result) {
        return new ExecutionOutcome.Completed(executionId, result, List.of(), Optional.empty(), false);
    }

    private static ExecutionOutcome lost(String executionId, String reason) {
        return new ExecutionOutcome.SandboxLost(executionId, reason, List.of(), false);
    }

    // ---- runs other callers started: none here (a single node; its callers keep their own)

    @Override
    public CompletionStage<Optional<ExecutionView>> lookup(Caller caller, String executionId) {
        return CompletableFuture.completedFuture(Optional.empty());
    }

    @Override
    public CompletionStage<ExecutionOutcome> follow(Caller caller, String executionId, OutputListener listener) {
        return CompletableFuture.completedFuture(new ExecutionOutcome.NotFound(executionId, "no execution " + executionId));
    }

    @Override
    public CompletionStage<Optional<ExecutionView>> cancel(Caller caller, String executionId, Duration wait) {
        return CompletableFuture.completedFuture(Optional.empty());
    }

    // ---- sandboxes

    @Override
    public CompletionStage<SandboxInfo> createSandbox(Caller caller, String id, SandboxSpec spec) {
        try {
            caller.policy().checkSandbox(spec.image(), spec.limits(), engine.settings().languages());
        } catch (InvalidRequestException e) {
            return CompletableFuture.failedFuture(e);
        }
        CompletionStage<SandboxQuota.Decision> slot = caller.tenant().isPresent()
                ? quota.reserve(caller.tenant().get(), id, caller.maxLiveSandboxes())
                : CompletableFuture.completedFuture(new SandboxQuota.Granted(0));
        return slot.thenCompose(decision -> {
            if (decision instanceof SandboxQuota.Refused refused) {
                throw new QuotaExceededException("tenant " + caller.name() + " holds " + refused.held() + " live "
                        + "sandboxes, its maximum of " + caller.maxLiveSandboxes() + "; delete one first", SANDBOX_QUOTA_RETRY);
            }
            return CompletableFuture.supplyAsync(() -> {
                String canonical = engine.language(spec.language())
                        .orElseThrow(() -> new InvalidRequestException("unknown language '" + spec.language() + "'")).name();
                SandboxSession session = engine.openSession(spec.image().orElseGet(() -> engine.imageFor(canonical)),
                        spec.limits(), spec.docker().orElseGet(() -> engine.settings().defaultOptions()));
                sandboxes.put(new SandboxKey(caller.tenant(), id), new LiveSandbox(session, canonical));
                return new SandboxInfo(id, canonical, "active");
            }, blockingCalls).whenComplete((info, error) -> {
                if (error != null) {
                    caller.tenant().ifPresent(tenant -> quota.release(tenant, id));
                }
            });
        });
    }

    @Override
    public CompletionStage<Optional<SandboxInfo>> sandbox(Caller caller, String sandboxId) {
        return CompletableFuture.completedFuture(Optional.ofNullable(sandboxes.get(new SandboxKey(caller.tenant(), sandboxId)))
                .map(s -> new SandboxInfo(sandboxId, s.language(), s.session().isUsable() ? "active" : "broken")));
    }

    @Override
    public CompletionStage<Optional<SandboxInfo>> deleteSandbox(Caller caller, String sandboxId) {
        LiveSandbox removed = sandboxes.remove(new SandboxKey(caller.tenant(), sandboxId));
        if (removed == null) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        caller.tenant().ifPresent(tenant -> quota.release(tenant, sandboxId));
        return CompletableFuture.supplyAsync(() -> {
            removed.session().close();
            return Optional.of(new SandboxInfo(sandboxId, removed.language(), "closed"));
        }, blockingCalls);
    }

    @Override
    public CompletionStage<Optional<Long>> writeFile(Caller caller, String sandboxId, String path, byte[] content) {
        LiveSandbox sandbox = sandboxes.get(new SandboxKey(caller.tenant(), sandboxId));
        if (sandbox == null) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        return CompletableFuture.supplyAsync(() -> {
            sandbox.session().writeFile(path, content);
            return Optional.of((long) content.length);
        }, blockingCalls);
    }

    @Override
    public CompletionStage<Optional<byte[]>> readFile(Caller caller, String sandboxId, String path, long maxBytes) {
        LiveSandbox sandbox = sandboxes.get(new SandboxKey(caller.tenant(), sandboxId));
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
        return KIND;
    }

    @Override
    public CompletionStage<PortStatus> status() {
        int runningNow = running.get();
        int queued = Math.max(0, admitted.get() - runningNow);
        Map<String, Integer> warm = engine.warmPoolSizes();
        // Sandbox runtimes that failed their health check at engine start are refused; say so here too.
        List<String> runtimeProblems = engine.runtimeProblems();
        return CompletableFuture.completedFuture(new PortStatus(!closed.get(),
                closed.get() ? "shutting down" : "engine backend " + engine.backendName()
                        + (runtimeProblems.isEmpty() ? "" : "; " + String.join("; ", runtimeProblems))
                        + "; blocks start as " + engine.startPath(),
                Map.of(WORKER_NAME, queued), Map.of(WORKER_NAME, runningNow), warm, sandboxes.size(),
                Optional.of(new PortStatus.WorkerGauges(slots, runningNow, queued))));
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
