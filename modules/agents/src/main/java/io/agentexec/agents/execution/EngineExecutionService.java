package io.agentexec.agents.execution;

import io.agentexec.agents.Isolation;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.SandboxSession;
import io.agentexec.sandbox.model.CodeBlock;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.SandboxOptions;
import io.agentexec.sandbox.model.Verdict;
import io.agentexec.sandbox.options.RunArgs;
import io.agentexec.sandbox.policy.ExecutionPolicy;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * Runs agents' code on this node's sandbox engine, one engine per isolation in use, one session
 * (one workspace) per agent and chat. Repeated execution keys answer from memory, so a chat that
 * resumes on this node does not run its code twice; across nodes that is the cluster's job.
 */
public final class EngineExecutionService implements ExecutionService {
    private final EngineSettings settings;
    private final ExecutionPolicy policy;
    private final boolean unsafeLocalOnly;
    private final Map<BackendChoice, SandboxEngine> engines = new EnumMap<>(BackendChoice.class);
    private final Map<String, SandboxSession> sessions = new ConcurrentHashMap<>();
    private final Map<String, CompletableFuture<ExecutionResult>> byKey;
    private final ExecutorService threads;

    /**
     * @param unsafeLocalOnly the operator's explicit unsafe-local setting: every agent's code runs on the host
     * @param rememberedResults results kept by execution key
     */
    public EngineExecutionService(EngineSettings settings, ExecutionPolicy policy, boolean unsafeLocalOnly, int threads,
                                  int rememberedResults) {
        this.settings = settings;
        this.policy = policy;
        this.unsafeLocalOnly = unsafeLocalOnly;
        this.threads = Executors.newFixedThreadPool(threads, r -> {
            Thread t = new Thread(r, "agentexec-agents-exec");
            t.setDaemon(true);
            return t;
        });
        this.byKey = java.util.Collections.synchronizedMap(new LinkedHashMap<>(16, 0.75f, true) {
            @Override
            protected boolean removeEldestEntry(Map.Entry<String, CompletableFuture<ExecutionResult>> eldest) {
                return size() > rememberedResults;
            }
        });
    }

    @Override
    public CompletionStage<ExecutionResult> execute(ExecutionCall call) {
        synchronized (byKey) {
            CompletableFuture<ExecutionResult> known = byKey.get(call.executionKey());
            if (known != null && !(known.isDone() && known.join().verdict() == Verdict.SANDBOX_ERROR)) {
                return known;
            }
            CompletableFuture<ExecutionResult> future = CompletableFuture.supplyAsync(() -> run(call), threads);
            byKey.put(call.executionKey(), future);
            return future;
        }
    }

    private ExecutionResult run(ExecutionCall call) {
        BackendChoice backend = backendFor(call.isolation());
        SandboxEngine engine;
        try {
            engine = engine(backend);
        } catch (RuntimeException e) {
            return ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, "sandbox backend " + backend + " unavailable: "
                    + e.getMessage(), backend.name().toLowerCase());
        }
        String language = call.request().blocks().stream().map(CodeBlock::language).findFirst().orElse("python");
        String image = call.image().orElseGet(() -> engine.imageFor(language));
        // the same policy as every other path: an image it allows, limits within its ceilings
        try {
            policy.checkImage(image, settings.languages());
        } catch (InvalidRequestException e) {
            return ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1, e.getMessage(), engine.backendName());
        }
        String key = call.sandboxKey() + "|" + backend + "|" + image;
        SandboxSession session;
        try {
            session = sessions.compute(key, (k, existing) -> {
                if (existing != null && existing.isUsable()) {
                    return existing;
                }
                if (existing != null) {
                    existing.close();
                }
                SandboxOptions options = engine.settings().defaultOptions().withNamePrefix(call.containerName());
                RunArgs.Applied applied = RunArgs.apply(call.dockerRunArgs(), options, call.request().limits(),
                        engine.settings().optionRules());
                return engine.openSession(image, policy.clamp(applied.limits()), applied.options());
            });
        } catch (InvalidRequestException e) {
            return ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1, e.getMessage(), engine.backendName());
        } catch (RuntimeException e) {
            return ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, "cannot open a sandbox: " + e.getMessage(),
                    engine.backendName());
        }
        return session.execute(policy.clamp(call.request()));
    }

    private BackendChoice backendFor(Isolation isolation) {
        if (unsafeLocalOnly) {
            return BackendChoice.UNSAFE_LOCAL;
        }
        return switch (isolation) {
            case DOCKER -> BackendChoice.DOCKER;
            case BWRAP -> BackendChoice.BWRAP;
            case UNSAFE_LOCAL -> throw new IllegalStateException("unsafe-local is only set by the operator's config");
        };
    }

    private synchronized SandboxEngine engine(BackendChoice backend) {
        return engines.computeIfAbsent(backend, b -> SandboxEngine.start(settings.withBackend(b)));
    }

    @Override
    public void release(String sandboxKey) {
        sessions.keySet().removeIf(key -> {
            if (key.startsWith(sandboxKey + "|")) {
                SandboxSession session = sessions.get(key);
                if (session != null) {
                    session.close();
                }
                return true;
            }
            return false;
        });
    }

    @Override
    public synchronized void close() {
        threads.shutdownNow();
        sessions.values().forEach(SandboxSession::close);
        sessions.clear();
        engines.values().forEach(SandboxEngine::close);
        engines.clear();
    }
}
