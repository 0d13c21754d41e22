package io.agentexec.agents.execution;

import io.agentexec.agents.Isolation;
import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.api.TenantScope;
import io.agentexec.cluster.port.Caller;
import io.agentexec.cluster.port.Callers;
import io.agentexec.cluster.port.ExecutionPort;
import io.agentexec.cluster.port.QuotaExceededException;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.backend.ImagePresence;
import io.agentexec.sandbox.model.CodeBlock;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import io.agentexec.sandbox.model.Verdict;
import io.agentexec.sandbox.options.RunArgs;
import io.agentexec.sandbox.policy.ExecutionPolicy;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Agents' code, run through the execution port ({@link ExecutionPort}) like every other caller's: each agent's
 * workspace in one chat is one sandbox of the chat's tenant, so its files persist across turns and survive this
 * node (on the cluster the sandbox entity is sharded and event-sourced), and counts against the tenant's
 * live-sandbox quota; each execution carries the chat's idempotency key ({@code chat#messageIndex}), so a chat
 * resumed after a crash gets the first run's reply back (marked replayed) instead of running the code again.
 *
 * <p>AG2's {@code use_docker: IMAGE} / {@code docker_image}, {@code docker_run_args} and
 * {@code docker_container_name} become the sandbox's spec; the limits they ask for are brought down to the
 * policy's ceilings, an image the policy does not allow is refused, and the port and its workers check it all
 * again. {@code use_docker: false} (AG2: run on the host) runs in the port's default sandbox without AG2's
 * Docker settings: never unsandboxed, whichever node hosts the chat.
 */
public final class WorkspaceExecutions implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(WorkspaceExecutions.class);
    /** What an execution id may be: the port prefixes the tenant, and the cluster's keys stop at 200 characters. */
    private static final Pattern EXECUTION_ID = Pattern.compile("[A-Za-z0-9._:~@+=-]{1,120}");
    private static final String BACKEND = "agents";
    private static final Duration FIRST_BACKOFF = Duration.ofMillis(100);
    private static final Duration MAX_BACKOFF = Duration.ofSeconds(2);
    /** The sandbox of a workspace with an image of its own: one for all languages (see {@link #execute}). */
    private static final String IMAGE_SANDBOX = "image";
    private static final String IMAGE_SANDBOX_LANGUAGE = "python";
    /** Docker calls (an image look-up) never run on the caller's thread, an actor's. */
    private final java.util.concurrent.ExecutorService blocking = java.util.concurrent.Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "agentexec-agents-io");
        t.setDaemon(true);
        return t;
    });

    private final ExecutionPort port;
    private final Callers callers;
    private final Optional<AgentexecCluster> cluster;
    private final EngineSettings engine;
    private final Optional<String> defaultImage;
    private final Duration overloadedRetryFor;
    /** Sandboxes opened per agent workspace, so that {@link #release} can close them. */
    private final Map<String, Set<String>> sandboxesByKey = new ConcurrentHashMap<>();

    /**
     * @param callers            the caller a chat's tenant stands for (its policy and quota)
     * @param cluster            the node, when the port is the cluster's: asked whether an image exists
     * @param defaultImage       the image of a workspace whose config names none: one sandbox for every language
     * @param overloadedRetryFor how long an execution the port refuses as overloaded is asked again before the
     *                           agent is told
     */
    public WorkspaceExecutions(ExecutionPort port, Callers callers, Optional<AgentexecCluster> cluster,
                               EngineSettings engine, Optional<String> defaultImage, Duration overloadedRetryFor) {
        this.port = port;
        this.callers = callers;
        this.cluster = cluster;
        this.engine = engine;
        this.defaultImage = defaultImage;
        this.overloadedRetryFor = overloadedRetryFor;
    }

    /** The caller a workspace's code runs as: its chat's tenant (its policy, its quota), or the node. */
    public Optional<Caller> callerFor(String sandboxKey) {
        return callers.of(tenantOf(sandboxKey));
    }

    /** Completes with the engine's judged result; infrastructure failures complete as SANDBOX_ERROR results. */
    public CompletionStage<ExecutionResult> execute(ExecutionCall call) {
        // With an image (the config's, else the polyglot default) every block runs in that one image, so the
        // workspace is one sandbox whatever the blocks' languages (a script saved by a javascript block is run by the
        // next sh block); without one each language has its own image, hence its own sandbox. The spec's language
        // then only names the default image, which the image replaces: it is fixed, so later turns create the same spec.
        Optional<String> image = imageOf(call);
        String language = image.isPresent() ? IMAGE_SANDBOX_LANGUAGE : sandboxLanguage(call);
        String sandbox = localId(call.sandboxKey(), image.isPresent() ? IMAGE_SANDBOX : language);
        Optional<String> tenant = tenantOf(call.sandboxKey());
        Optional<Caller> found = callers.of(tenant);
        if (found.isEmpty()) {
            return CompletableFuture.completedFuture(ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1,
                    "not run: tenant " + tenant.orElse("") + " is not known (any more)", BACKEND));
        }
        Caller caller = found.get();
        String id = executionId(call.executionKey());
        SandboxSpec spec;
        try {
            spec = sandboxSpec(call, language, image, caller.policy());
        } catch (InvalidRequestException e) {
            // a refused docker_run_args flag or image: nothing is created, nothing runs; the message names the rule
            return CompletableFuture.completedFuture(ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1,
                    e.getMessage(), BACKEND));
        }
        // the worker opens the container with the request's limits: they must be the ones the run args set
        ExecutionRequest request = withLimits(call.request(), spec.limits());
        sandboxesByKey.computeIfAbsent(call.sandboxKey(), k -> ConcurrentHashMap.newKeySet()).add(sandbox);
        Instant giveUp = Instant.now().plus(overloadedRetryFor);
        // creating is a no-op for an existing sandbox of that spec: the first turn opens it (taking one of the
        // tenant's live-sandbox slots, as one made over HTTP does), later ones reuse it
        return missingImage(spec).thenCompose(missing -> missing.isPresent()
                        ? CompletableFuture.completedFuture(ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, missing.get(), BACKEND))
                        : port.createSandbox(caller, sandbox, spec)
                                .thenCompose(info -> executeRetryingOverload(caller, sandbox, request, id, giveUp, FIRST_BACKOFF))
                                .thenApply(WorkspaceExecutions::toResult))
                .exceptionally(WorkspaceExecutions::failure);
    }

    /**
     * Why the spec's image cannot be run, when this node is a worker whose backend says it does not have it. The
     * cluster takes a container that cannot be made for a broken worker and retries elsewhere for up
     * to {@code retry-capacity-wait} (minutes), which is right for a worker but makes a mistyped image
     * wait that long; the workers share one set of images (scripts/setup.sh), so missing here is
     * missing there. A node that is no worker, or whose backend has no images, cannot tell and leaves it
     * to the cluster.
     */
    private CompletionStage<Optional<String>> missingImage(SandboxSpec spec) {
        Optional<SandboxEngine> engine = cluster.flatMap(AgentexecCluster::engine);
        if (spec.image().isEmpty() || engine.isEmpty()) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        String image = spec.image().get();
        return CompletableFuture.supplyAsync(() -> engine.get().imagePresence(image) == ImagePresence.ABSENT
                ? Optional.of("not run: image " + image + " is not present on the cluster's workers; build it with "
                        + "images/build.sh or pull it from a registry")
                : Optional.<String>empty(), blocking);
    }

    /**
     * The sandbox an agent's workspace runs in: its language, the call's limits, and for Docker the image and
     * AG2's run args / container name, read against the engine's settings; the limits brought down to the caller's
     * ceilings, the image checked against its policy. Throws {@link InvalidRequestException} naming a refused flag
     * or image.
     */
    SandboxSpec sandboxSpec(ExecutionCall call, String language, Optional<String> image, ExecutionPolicy policy) {
        Limits limits = call.request().limits();
        Optional<SandboxOptions> docker = Optional.empty();
        boolean dockerSettings = call.isolation() == Isolation.DOCKER;
        if (dockerSettings && (!call.dockerRunArgs().isEmpty() || call.containerName().isPresent())) {
            // docker_container_name wins over a --name among the run args, as in AG2
            RunArgs.Applied applied = RunArgs.apply(call.dockerRunArgs(), call.containerName(), limits,
                    engine.optionRules());
            limits = applied.limits();
            docker = Optional.of(applied.options());
        }
        // AG2 configs ask freely (timeout: 86400, --memory 16g): the operator's ceilings decide
        SandboxSpec spec = SandboxSpec.of(language, policy.clamp(limits));
        if (docker.isPresent()) {
            spec = spec.withDocker(docker.get());
        }
        if (image.isPresent()) {
            policy.checkImage(image.get(), engine.languages());
            spec = spec.withImage(image.get());
        }
        return spec;
    }

    /** AG2's image when the config names one (Docker only: use_docker false takes no Docker settings), else the default. */
    private Optional<String> imageOf(ExecutionCall call) {
        return (call.isolation() == Isolation.DOCKER ? call.image() : Optional.<String>empty()).or(() -> defaultImage);
    }

    private static ExecutionRequest withLimits(ExecutionRequest request, Limits limits) {
        return request.limits().equals(limits) ? request : new ExecutionRequest(request.blocks(), limits,
                request.environment(), request.stdin(), request.files(), request.image());
    }

    /**
     * An overloaded port ran nothing and recorded nothing, so asking again under the same id is safe; a chat waits
     * a while for a slot (a node that just started has not met its workers yet) before it reports the overload to
     * the agent.
     */
    private CompletionStage<ExecutionOutcome> executeRetryingOverload(Caller caller, String sandboxId, ExecutionRequest request,
                                                                    String id, Instant giveUp, Duration backoff) {
        return port.start(caller, id, Optional.of(sandboxId), request, OutputListener.NONE).outcome().thenCompose(reply -> {
            if (!(reply instanceof ExecutionOutcome.Overloaded) || Instant.now().plus(backoff).isAfter(giveUp)) {
                return CompletableFuture.completedFuture(reply);
            }
            Executor later = CompletableFuture.delayedExecutor(backoff.toMillis(), TimeUnit.MILLISECONDS);
            Duration next = backoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : backoff.multipliedBy(2);
            return CompletableFuture.supplyAsync(() -> null, later)
                    .thenCompose(x -> executeRetryingOverload(caller, sandboxId, request, id, giveUp, next));
        });
    }

    /** The first block's language when the cluster knows it; else python, whose sandbox answers AG2's "unknown language". */
    private String sandboxLanguage(ExecutionCall call) {
        return call.request().blocks().stream().map(CodeBlock::language).findFirst()
                .flatMap(l -> engine.languages().find(l)).map(l -> l.name()).orElse("python");
    }

    /**
     * The sandbox of one agent workspace and language, as the chat's tenant names it: a readable prefix and a hash of
     * the workspace key (chat/agent/work_dir holds '/' and may be long; sandbox ids may not).
     */
    static String localId(String sandboxKey, String language) {
        return "agents-" + language + "-" + sha256(sandboxKey).substring(0, 40);
    }

    /**
     * The same sandbox as the cluster names it: scoped to the chat's tenant when it has one ({@link TenantScope}),
     * so it is the tenant's sandbox, on its quota (what operators and tests look up in the cluster).
     */
    public static String sandboxId(String sandboxKey, String language) {
        String local = localId(sandboxKey, language);
        return tenantOf(sandboxKey).map(tenant -> TenantScope.scoped(tenant, local)).orElse(local);
    }

    /** The tenant of the chat that owns a workspace key {@code chat/agent/work_dir}. */
    public static Optional<String> tenantOf(String sandboxKey) {
        int slash = sandboxKey.indexOf('/');
        return TenantScope.tenantOf(slash < 0 ? sandboxKey : sandboxKey.substring(0, slash));
    }

    /**
     * The chat's key {@code chat#index} as an execution id: '#' becomes ':'; a key that still does not fit (the port
     * puts the tenant in front, and the cluster's keys stop at 200 characters) is hashed.
     */
    public static String executionId(String executionKey) {
        String key = executionKey.replace('#', ':');
        return EXECUTION_ID.matcher(key).matches() ? key : "agents:" + sha256(executionKey);
    }

    static ExecutionResult toResult(ExecutionOutcome reply) {
        // Java 17: no pattern switch yet; the cases of the sealed outcome, in turn
        if (reply instanceof ExecutionOutcome.Completed c) {
            return announce(c);
        }
        if (reply instanceof ExecutionOutcome.SandboxLost l) {
            return ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1,
                    "the worker running this code was lost mid-run (" + l.reason() + "): the code may or may not have "
                            + "run, and the workspace's files are gone; the next run gets a fresh sandbox", BACKEND);
        }
        if (reply instanceof ExecutionOutcome.Overloaded o) {
            return ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1,
                    "not run: every worker of the cluster is busy (" + o.reason() + "); nothing ran", BACKEND);
        }
        ExecutionOutcome.NothingRan r = (ExecutionOutcome.NothingRan) reply; // Rejected or NotFound
        return ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1,
                "not run: the cluster refused the execution (" + r.reason() + ")", BACKEND);
    }

    /** The engine's result, with what the agent must know said in its reply: a lost workspace, a possible second run. */
    private static ExecutionResult announce(ExecutionOutcome.Completed c) {
        ExecutionResult r = c.result();
        StringBuilder note = new StringBuilder();
        c.workspaceLost().ifPresent(why -> note.append("[agentexec: the workspace's earlier files are gone (").append(why)
                .append("); this ran in a fresh sandbox]\n"));
        if (c.mayHaveRunMoreThanOnce()) {
            note.append("[agentexec: the code may have started more than once (attempts: ")
                    .append(c.attempts().stream().map(Attempt::toString).toList()).append(")]\n");
        }
        if (note.isEmpty()) {
            return r;
        }
        String message = r.message().isEmpty() ? note.toString().strip() : r.message() + "\n" + note.toString().strip();
        return new ExecutionResult(r.verdict(), r.exitCode(), r.signal(), r.stdout(), r.stderr(), r.output(),
                r.stdoutTruncated(), r.stderrTruncated(), r.stdoutBytes(), r.stderrBytes(), r.wallTimeMs(),
                r.peakMemoryBytes(), r.filesWritten(), r.blocks(), message, r.backend(), r.ag2Reply() + "\n" + note);
    }

    private static ExecutionResult failure(Throwable error) {
        Throwable e = error;
        while (e instanceof CompletionException && e.getCause() != null) {
            e = e.getCause();
        }
        if (e instanceof InvalidRequestException) {
            return ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1, e.getMessage(), BACKEND);
        }
        if (e instanceof QuotaExceededException) {
            return ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1, "not run: " + e.getMessage(), BACKEND);
        }
        if (e instanceof org.apache.pekko.pattern.StatusReply.ErrorMessage) {
            return ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, "not run: " + e.getMessage(), BACKEND);
        }
        return ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, "not run: the cluster did not answer ("
                + e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage()) + ")", BACKEND);
    }

    /**
     * The chat is over: its workspace's sandboxes go (one per language it used) and give their quota slots back.
     * The ids are derived from the key, so a chat that ended on another node than the one that ran its code (the
     * chat entity moved after a crash) still closes them: every language's sandbox that exists is closed.
     */
    public void release(String sandboxKey) {
        Set<String> ids = new java.util.LinkedHashSet<>(Optional.ofNullable(sandboxesByKey.remove(sandboxKey)).orElse(Set.of()));
        engine.languages().all().forEach(l -> ids.add(localId(sandboxKey, l.name())));
        ids.add(localId(sandboxKey, IMAGE_SANDBOX));
        Optional<Caller> caller = callers.of(tenantOf(sandboxKey));
        if (caller.isEmpty()) {
            return; // the tenant is gone: its sandboxes expire when idle
        }
        for (String id : ids) {
            port.deleteSandbox(caller.get(), id).whenComplete((v, e) -> {
                if (e != null) {
                    log.warn("closing sandbox {} failed (its idle timeout removes it): {}", id, e.toString());
                }
            });
        }
    }

    /**
     * A file of the workspace {@code sandboxKey} (its one polyglot sandbox, else a language's), at most {@code maxBytes};
     * empty when no sandbox of the workspace has it (or the workspace is gone).
     */
    public CompletionStage<Optional<byte[]>> readFile(String sandboxKey, String path, long maxBytes) {
        Optional<Caller> caller = callers.of(tenantOf(sandboxKey));
        if (caller.isEmpty()) {
            return java.util.concurrent.CompletableFuture.completedFuture(Optional.empty());
        }
        List<String> ids = new ArrayList<>();
        ids.add(localId(sandboxKey, IMAGE_SANDBOX));
        engine.languages().all().forEach(l -> ids.add(localId(sandboxKey, l.name())));
        return readFirst(caller.get(), ids, 0, path, maxBytes);
    }

    private CompletionStage<Optional<byte[]>> readFirst(Caller caller, List<String> ids, int index, String path,
                                                        long maxBytes) {
        if (index == ids.size()) {
            return java.util.concurrent.CompletableFuture.completedFuture(Optional.empty());
        }
        return port.readFile(caller, ids.get(index), path, maxBytes).thenCompose(found -> found.isPresent()
                ? java.util.concurrent.CompletableFuture.completedFuture(found)
                : readFirst(caller, ids, index + 1, path, maxBytes));
    }

    @Override
    public void close() {
        // the port belongs to whoever made it
        blocking.shutdownNow();
    }

    private static String sha256(String text) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
