package io.agentexec.agents.execution;

import com.github.dockerjava.api.exception.NotFoundException;
import io.agentexec.agents.Isolation;
import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.api.TenantScope;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.docker.DockerBackend;
import io.agentexec.sandbox.docker.DockerOptions;
import io.agentexec.sandbox.docker.DockerRunArgs;
import io.agentexec.sandbox.model.CodeBlock;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import io.agentexec.sandbox.policy.ExecutionPolicy;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.HexFormat;
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
import org.apache.pekko.pattern.StatusReply;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs agents' code through the cluster ({@link AgentexecCluster#execute}): each agent's workspace in
 * one chat is one cluster sandbox, so its files persist across turns and survive this node (the
 * sandbox entity is sharded and event-sourced), and each execution carries the chat's idempotency
 * key ({@code chat#messageIndex}), so a chat resumed after a crash gets the first run's reply back
 * (the cluster marks it replayed) instead of running the code again.
 *
 * <p>AG2's {@code use_docker: IMAGE} / {@code docker_image}, {@code docker_run_args} and
 * {@code docker_container_name} go to the cluster too: the run args are read against the cluster's
 * engine settings ({@link AgentexecCluster#dockerRunArgs}) and the sandbox is created from a
 * {@link SandboxSpec} with the image and the Docker options, so the container really carries them.
 *
 * <p>Every call goes to the cluster, under the operator's one execution policy: the limits AG2's settings ask
 * for ({@code timeout}, a profile, {@code --memory} in {@code docker_run_args}) are brought down to its ceilings,
 * an image it does not allow is refused, and the cluster and its workers check the result again.
 * {@code use_docker: false} (AG2: run on the host) runs in the cluster's default sandbox without AG2's Docker
 * settings: never on this node, never unsandboxed.
 */
public final class ClusterExecutionService implements ExecutionService {
    private static final Logger log = LoggerFactory.getLogger(ClusterExecutionService.class);
    /** The cluster's idempotency keys: what AgentexecCluster accepts (no '#', at most 200 characters). */
    private static final Pattern CLUSTER_KEY = Pattern.compile("[A-Za-z0-9._:~@+=-]{1,200}");
    private static final String BACKEND = "cluster";
    private static final Duration FIRST_BACKOFF = Duration.ofMillis(100);
    private static final Duration MAX_BACKOFF = Duration.ofSeconds(2);
    /** The sandbox of a workspace with an image of its own: one for all languages (see {@link #execute}). */
    private static final String IMAGE_SANDBOX = "image";
    private static final String IMAGE_SANDBOX_LANGUAGE = "python";
    /** Docker calls (an image look-up) never run on the caller's thread, an actor's. */
    private final java.util.concurrent.ExecutorService blocking = java.util.concurrent.Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "agentexec-agents-cluster-io");
        t.setDaemon(true);
        return t;
    });

    private final AgentexecCluster cluster;
    private final EngineSettings engine;
    private final Duration overloadedRetryFor;
    private final WorkspaceQuota quota;
    /** Cluster sandboxes opened per agent workspace, so that {@link #release} can close them. */
    private final Map<String, Set<String>> sandboxesByKey = new ConcurrentHashMap<>();

    /**
     * @param overloadedRetryFor how long an execution the cluster refuses as overloaded is asked again before the
     *                           agent is told
     * @param quota              the tenants' live-sandbox quota, which a chat's sandboxes count against
     */
    public ClusterExecutionService(AgentexecCluster cluster, EngineSettings engine, Duration overloadedRetryFor,
                                   WorkspaceQuota quota) {
        this.cluster = cluster;
        this.overloadedRetryFor = overloadedRetryFor;
        this.engine = engine;
        this.quota = quota;
    }

    @Override
    public CompletionStage<ExecutionResult> execute(ExecutionCall call) {
        // With an image every block runs in that one image, so the workspace is one sandbox whatever the
        // blocks' languages (a script saved by a javascript block is run by the next sh block); without
        // one each language has its own image, hence its own sandbox. The spec's language then only names
        // the default image, which the image replaces: it is fixed, so later turns create the same spec.
        boolean ownImage = call.isolation() == Isolation.DOCKER && call.image().isPresent();
        String language = ownImage ? IMAGE_SANDBOX_LANGUAGE : sandboxLanguage(call);
        String sandboxId = sandboxId(call.sandboxKey(), ownImage ? IMAGE_SANDBOX : language);
        Optional<String> tenant = tenantOf(call.sandboxKey());
        String key = clusterKey(call.executionKey());
        SandboxSpec spec;
        try {
            spec = sandboxSpec(call, language);
        } catch (InvalidRequestException e) {
            // a refused docker_run_args flag or image: nothing is created, nothing runs; the message names the rule
            return CompletableFuture.completedFuture(ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1,
                    e.getMessage(), BACKEND));
        }
        // the worker opens the container with the request's limits: they must be the ones the run args set
        ExecutionRequest request = withLimits(call.request(), spec.limits());
        sandboxesByKey.computeIfAbsent(call.sandboxKey(), k -> ConcurrentHashMap.newKeySet()).add(sandboxId);
        // creating is a no-op for an existing sandbox of that spec: the first turn opens it, later ones reuse it
        Instant giveUp = Instant.now().plus(overloadedRetryFor);
        SandboxSpec checked = spec;
        // a tenant's chat sandbox takes one of its live-sandbox slots, like one made over HTTP (idempotent per id)
        CompletionStage<Optional<String>> slot = tenant.isPresent()
                ? quota.reserve(tenant.get(), localId(sandboxId))
                : CompletableFuture.completedFuture(Optional.empty());
        return slot.thenCompose(refusal -> refusal.isPresent()
                ? CompletableFuture.completedFuture(ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1,
                        "not run: " + refusal.get(), BACKEND))
                : missingImage(spec).thenCompose(missing -> missing.isPresent()
                        ? CompletableFuture.completedFuture(ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, missing.get(), BACKEND))
                        : cluster.createSandbox(sandboxId, checked)
                                .thenCompose(view -> executeRetryingOverload(sandboxId, request, key, giveUp, FIRST_BACKOFF))
                                .thenApply(ClusterExecutionService::toResult)))
                .exceptionally(ClusterExecutionService::failure);
    }

    /**
     * Why the spec's image cannot be run, when this node is a Docker worker and does not have it. The
     * cluster takes a container that cannot be made for a broken worker and retries elsewhere for up
     * to {@code retry-capacity-wait} (minutes), which is right for a worker but makes a mistyped image
     * wait that long; the workers share one set of images (scripts/setup.sh), so missing here is
     * missing there. A node that is no worker cannot tell and leaves it to the cluster.
     */
    private CompletionStage<Optional<String>> missingImage(SandboxSpec spec) {
        Optional<DockerBackend> docker = cluster.engine().map(SandboxEngine::backend)
                .filter(DockerBackend.class::isInstance).map(DockerBackend.class::cast);
        if (spec.image().isEmpty() || docker.isEmpty()) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        String image = spec.image().get();
        return CompletableFuture.supplyAsync(() -> {
            try {
                docker.get().dockerClient().inspectImageCmd(image).exec();
                return Optional.<String>empty();
            } catch (NotFoundException e) {
                return Optional.of("not run: image " + image + " is not present on the cluster's workers; build it with "
                        + "images/build.sh or pull it from a registry");
            } catch (RuntimeException e) {
                return Optional.<String>empty();
            }
        }, blocking);
    }

    /**
     * The sandbox an agent's workspace runs in: its language, the call's limits, and for Docker the image and
     * AG2's run args / container name, read by the cluster against its engine's settings; the limits brought
     * down to the policy's ceilings, the image checked against it. Throws {@link InvalidRequestException}
     * naming a refused flag or image.
     */
    SandboxSpec sandboxSpec(ExecutionCall call, String language) {
        Limits limits = call.request().limits();
        Optional<DockerOptions> docker = Optional.empty();
        boolean dockerSettings = call.isolation() == Isolation.DOCKER;
        if (dockerSettings && (!call.dockerRunArgs().isEmpty() || call.containerName().isPresent())) {
            DockerRunArgs.Applied applied = cluster.dockerRunArgs(call.dockerRunArgs(), call.containerName(), limits);
            limits = applied.limits();
            docker = Optional.of(applied.options());
        }
        // AG2 configs ask freely (timeout: 86400, --memory 16g): the operator's ceilings decide
        ExecutionPolicy policy = cluster.policy().policy();
        SandboxSpec spec = SandboxSpec.of(language, policy.clamp(limits));
        if (docker.isPresent()) {
            spec = spec.withDocker(docker.get());
        }
        if (dockerSettings && call.image().isPresent()) {
            policy.checkImage(call.image().get(), engine.languages());
            spec = spec.withImage(call.image().get());
        }
        return spec;
    }

    private static ExecutionRequest withLimits(ExecutionRequest request, Limits limits) {
        return request.limits().equals(limits) ? request : new ExecutionRequest(request.blocks(), limits,
                request.environment(), request.stdin(), request.files(), request.image());
    }

    /**
     * An overloaded cluster ran nothing and recorded nothing, so asking again under the same key is
     * safe; a chat waits a while for a slot (a node that just started has not met its workers yet)
     * before it reports the overload to the agent.
     */
    private CompletionStage<ExecutionOutcome> executeRetryingOverload(String sandboxId, ExecutionRequest request, String key,
                                                                    Instant giveUp, Duration backoff) {
        return cluster.execute(Optional.of(sandboxId), request, key).thenCompose(reply -> {
            if (!(reply instanceof ExecutionOutcome.Overloaded) || Instant.now().plus(backoff).isAfter(giveUp)) {
                return CompletableFuture.completedFuture(reply);
            }
            Executor later = CompletableFuture.delayedExecutor(backoff.toMillis(), TimeUnit.MILLISECONDS);
            Duration next = backoff.multipliedBy(2).compareTo(MAX_BACKOFF) > 0 ? MAX_BACKOFF : backoff.multipliedBy(2);
            return CompletableFuture.supplyAsync(() -> null, later)
                    .thenCompose(x -> executeRetryingOverload(sandboxId, request, key, giveUp, next));
        });
    }

    /** The first block's language when the cluster knows it; else python, whose sandbox answers AG2's "unknown language". */
    private String sandboxLanguage(ExecutionCall call) {
        return call.request().blocks().stream().map(CodeBlock::language).findFirst()
                .flatMap(l -> engine.languages().find(l)).map(l -> l.name()).orElse("python");
    }

    /**
     * The cluster sandbox of one agent workspace and language: a readable prefix and a hash of the
     * workspace key (chat/agent/work_dir holds '/' and may be long; sandbox ids may not), scoped to the
     * chat's tenant when it has one ({@link TenantScope}): the tenant's sandbox, on its quota.
     */
    public static String sandboxId(String sandboxKey, String language) {
        String local = "agents-" + language + "-" + sha256(sandboxKey).substring(0, 40);
        return tenantOf(sandboxKey).map(tenant -> TenantScope.scoped(tenant, local)).orElse(local);
    }

    /** The tenant of the chat that owns a workspace key {@code chat/agent/work_dir}. */
    static Optional<String> tenantOf(String sandboxKey) {
        int slash = sandboxKey.indexOf('/');
        return TenantScope.tenantOf(slash < 0 ? sandboxKey : sandboxKey.substring(0, slash));
    }

    private static String localId(String sandboxId) {
        return sandboxId.substring(sandboxId.indexOf("agents-"));
    }

    /** The chat's key {@code chat#index} as the cluster spells keys: '#' becomes ':'; a key that still does not fit is hashed. */
    public static String clusterKey(String executionKey) {
        String key = executionKey.replace('#', ':');
        return CLUSTER_KEY.matcher(key).matches() ? key : "agents:" + sha256(executionKey);
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
        if (e instanceof StatusReply.ErrorMessage) {
            return ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, "not run: " + e.getMessage(), BACKEND);
        }
        return ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, "not run: the cluster did not answer ("
                + e.getClass().getSimpleName() + (e.getMessage() == null ? "" : ": " + e.getMessage()) + ")", BACKEND);
    }

    /**
     * Closes the workspace's cluster sandboxes (one per language it used). The ids are derived from the
     * key, so a chat that ended on another node than the one that ran its code (the chat entity moved
     * after a crash) still closes them: every language's sandbox that exists is closed.
     */
    @Override
    public void release(String sandboxKey) {
        Set<String> ids = new java.util.LinkedHashSet<>(Optional.ofNullable(sandboxesByKey.remove(sandboxKey)).orElse(Set.of()));
        engine.languages().all().forEach(l -> ids.add(sandboxId(sandboxKey, l.name())));
        ids.add(sandboxId(sandboxKey, IMAGE_SANDBOX));
        Optional<String> tenant = tenantOf(sandboxKey);
        for (String id : ids) {
            tenant.ifPresent(t -> quota.release(t, localId(id)));
            cluster.sandbox(id)
                    .thenCompose(view -> view.status() == SandboxView.Status.ACTIVE || view.status() == SandboxView.Status.EXPIRED
                            ? cluster.closeSandbox(id).thenApply(closed -> closed)
                            : CompletableFuture.completedFuture(view))
                    .whenComplete((v, e) -> {
                        if (e != null) {
                            log.warn("closing sandbox {} failed (its idle timeout removes it): {}", id, e.toString());
                        }
                    });
        }
    }

    @Override
    public void close() {
        // the cluster belongs to whoever started it
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
