package io.agentexec.gateway.service;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.executors.ExecutorOutcome;
import io.agentexec.cluster.executors.SeedExecutors;
import io.agentexec.cluster.port.ExecutionIds;
import io.agentexec.cluster.port.ExecutionPort;
import io.agentexec.cluster.port.ExecutionView;
import io.agentexec.cluster.port.RunHandle;
import io.agentexec.gateway.executions.ExecutionRegistry;
import io.agentexec.gateway.executions.TrackedExecution;
import io.agentexec.gateway.logging.RequestLog;
import io.agentexec.gateway.metrics.Metrics;
import io.agentexec.gateway.service.RequestRules.ExecutionForm;
import io.agentexec.gateway.service.RequestRules.ExecutionSpec;
import io.agentexec.sandbox.model.ExecutionRequest;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs, for both transports. Starting one checks the request, registers it with this node's registry, starts it
 * through the execution port and records its outcome (metrics and the request log). An execution is found by id
 * through one lookup for reading, following and cancelling it: this node's registry first (runs this node took, with
 * a replay of their output), else the port's directory (any other run the caller may see, on any node).
 */
public final class Executions {
    private static final Logger log = LoggerFactory.getLogger(Executions.class);

    /** What a request to run code became: one run ({@link Started}), or runs made by the seed's executors. */
    public sealed interface Accepted permits Started, Executed { }

    /**
     * A request the seed's executors answer (a policy, retries, the cache, tests): each attempt and test case is a run
     * of its own, readable by its id; the outcome completes once they are all done.
     *
     * @param id the first run's id (or the refused or cached answer's)
     */
    public record Executed(String id, CompletionStage<ExecutorOutcome> outcome) implements Accepted { }

    /** A run this node started: its tracker (id, output, outcome) and the port's handle. */
    public record Started(TrackedExecution tracked, RunHandle run) implements Accepted {
        public String id() {
            return tracked.id();
        }

        public boolean ended() {
            return run.outcome().toCompletableFuture().isDone();
        }

        /** Its caller went away before the end: stop the code and free its sandbox. */
        public void cancelUnlessEnded() {
            if (!ended()) {
                run.cancel();
            }
        }
    }

    /** An execution as its tenant finds it by id: when it started (when its id tells) and its outcome once it ended. */
    public record Found(String id, Optional<Instant> startedAt, Optional<ExecutionOutcome> outcome) { }

    private final ExecutionPort port;
    private final ExecutionRegistry registry;
    private final RequestRules rules;
    private final Metrics metrics;
    private final Draining draining;
    private final Duration askTimeout;
    private final SeedExecutors executors;

    Executions(ExecutionPort port, ExecutionRegistry registry, RequestRules rules, Metrics metrics, Draining draining,
               Duration askTimeout, SeedExecutors executors) {
        this.executors = executors;
        this.port = port;
        this.registry = registry;
        this.rules = rules;
        this.metrics = metrics;
        this.draining = draining;
        this.askTimeout = askTimeout;
    }

    /**
     * Starts what a transport reads into a form: a plain run ({@link Started}), or, when the request asks for a policy,
     * retries, the cache or tests (or its profile was held at a ceiling, which the answer says), the seed's executors
     * around its runs ({@link Executed}: answered synchronously, never async). Every run counts in the tenant's
     * statistics (GET /v1/stats).
     *
     * @param source the transport, for the statistics ({@code http}, {@code grpc})
     */
    public CompletionStage<Accepted> accept(Requester who, boolean async, String source, Consumer<ExecutionForm> read) {
        // async: answered before the run ends (HTTP's ?async=true, gRPC's stream)
        draining.refuseNewWork();
        ExecutionForm form = rules.execution(who.tenant().policy());
        read.accept(form);
        ExecutionSpec requested = form.build();
        if (requested.sandboxId().isEmpty()) {
            return CompletableFuture.completedFuture(accept(who, async, source, requested, false));
        }
        // A run in a sandbox takes the executor options the sandbox was created with, under its own.
        return executors.sandboxDefaults(who.tenant().caller(), requested.sandboxId().get()).thenApply(defaults ->
                accept(who, async, source, requested.underDefaults(defaults), !defaults.isEmpty()));
    }

    private Accepted accept(Requester who, boolean async, String source, ExecutionSpec spec, boolean sandboxDefaults) {
        Map<String, String> ids = who.logIds();
        if (async && spec.needsExecutors()) {
            throw ApiException.badRequest("async: a request with policy, retries, cache or tests"
                    + (sandboxDefaults ? " (its sandbox's defaults included)" : "") + " is answered once all "
                    + "its runs are done (each attempt and case is a run of its own): drop async (HTTP), or use Execute "
                    + "rather than ExecuteStream (gRPC)");
        }
        // a profile held at a ceiling is said in a synchronous answer's notes (an async one's result has the limits)
        if (!async && (spec.needsExecutors() || !spec.notes().isEmpty())) {
            return executed(who, source, spec, ids);
        }
        TrackedExecution tracked = registry.register(who.tenant().id(), spec.sandboxId());
        ids.put("executionId", tracked.id());
        RunHandle run = port.start(who.tenant().caller(), tracked.id(), spec.sandboxId(), spec.request(), tracked);
        tracked.attach(run);
        run.outcome().thenAccept(outcome -> {
            tracked.complete(outcome);
            record(outcome, ids);
            executors.recordPlain(who.tenant().caller(), tracked.id(), spec.request(), spec.options(), source, outcome);
        });
        RequestLog.info(log, ids, "execution accepted ({} block(s), sandbox {}, async {})",
                spec.request().blocks().size(), spec.sandboxId().orElse("none"), async);
        return new Started(tracked, run);
    }

    /** The seed's executors around the request's runs: each run registered (followable by its id) and recorded. */
    private Executed executed(Requester who, String source, ExecutionSpec spec, Map<String, String> ids) {
        Map<String, TrackedExecution> runs = new ConcurrentHashMap<>();
        String first = registry.newId(spec.sandboxId());
        ids.put("executionId", first);
        SeedExecutors.Runner runner = new SeedExecutors.Runner() {
            @Override
            public String executionId(int sequence) {
                return sequence == 1 ? first : registry.newId(spec.sandboxId());
            }

            @Override
            public CompletionStage<ExecutionOutcome> run(int sequence, String executionId, ExecutionRequest request) {
                TrackedExecution tracked = registry.register(who.tenant().id(), executionId);
                runs.put(executionId, tracked);
                RunHandle run = port.start(who.tenant().caller(), executionId, spec.sandboxId(), request, tracked);
                tracked.attach(run);
                return run.outcome().thenApply(outcome -> {
                    tracked.complete(outcome);
                    Map<String, String> runIds = new java.util.HashMap<>(ids);
                    runIds.put("executionId", executionId);
                    record(outcome, runIds);
                    return asCalled(outcome, executionId);
                });
            }
        };
        RequestLog.info(log, ids, "execution accepted with executors ({} block(s), sandbox {}, policy {}, retries {}, "
                        + "cache {}, tests {})", spec.request().blocks().size(), spec.sandboxId().orElse("none"),
                spec.options().policy().map(p -> p.name()).orElse("none"), spec.options().attempts(),
                spec.options().caching(), spec.options().tests().map(t -> t.size()).orElse(0));
        String scope = spec.sandboxId().map(id -> "sandbox:" + id).orElse("one-off");
        CompletionStage<ExecutorOutcome> outcome;
        try {
            outcome = executors.run(new SeedExecutors.Call(who.tenant().caller(), first, spec.request(), spec.options(),
                    scope, source, spec.notes()), runner);
        } catch (RuntimeException e) {
            outcome = CompletableFuture.failedFuture(e);
        }
        return new Executed(first, outcome.exceptionally(e -> {
            Throwable cause = ApiException.unwrap(e);
            if (cause instanceof io.agentexec.sandbox.model.InvalidRequestException invalid) {
                throw ApiException.badRequest(invalid.getMessage());
            }
            throw e instanceof java.util.concurrent.CompletionException c ? c
                    : new java.util.concurrent.CompletionException(e);
        }));
    }

    /**
     * The outcome under the id its caller knows: the cluster's port answers with its internal key (TENANT:ID), which
     * an answer must not show.
     */
    private static ExecutionOutcome asCalled(ExecutionOutcome outcome, String executionId) {
        if (outcome instanceof ExecutionOutcome.Completed c && !c.executionKey().equals(executionId)) {
            return new ExecutionOutcome.Completed(executionId, c.result(), c.attempts(), c.workspaceLost(), c.replayed());
        }
        return outcome;
    }

    /** The caller's statistics (GET /v1/stats): overall, by executor name and by profile. */
    public CompletionStage<io.agentexec.cluster.executors.StatsReport> stats(Requester who, Optional<String> executor) {
        return executors.stats(who.tenant().caller(), executor);
    }

    private void record(ExecutionOutcome outcome, Map<String, String> ids) {
        if (Outcomes.hasResult(outcome)) {
            ExecutionOutcome.Completed c = (ExecutionOutcome.Completed) outcome;
            metrics.recordExecution(c.result().verdict().name(), c.result().wallTimeMs());
            RequestLog.info(log, ids, "execution ended: {} exit {} in {} ms", c.result().verdict(), c.result().exitCode(),
                    c.result().wallTimeMs());
        } else {
            String reason = Outcomes.refusal(outcome);
            metrics.recordRefusal(reason);
            RequestLog.info(log, ids, "execution ended without a verdict: {}", reason);
        }
    }

    /** The caller's execution {@code id}, running or ended; 404 when it has none by that id. */
    public CompletionStage<Found> find(Requester who, String id) {
        Optional<TrackedExecution> local = cached(who, id);
        if (local.isPresent()) {
            return CompletableFuture.completedFuture(found(local.get()));
        }
        return fromPort(id, port.lookup(who.tenant().caller(), id));
    }

    /**
     * Stops the caller's execution {@code id} and answers what is known after. A run this node took stops through its
     * handle (409 when it cannot be stopped: its timeout ends it); any other through the port, wherever it runs.
     */
    public CompletionStage<Found> cancel(Requester who, String id) {
        Optional<TrackedExecution> local = cached(who, id);
        if (local.isEmpty()) {
            return fromPort(id, port.cancel(who.tenant().caller(), id, askTimeout));
        }
        TrackedExecution tracked = local.get();
        RunHandle run = tracked.handle().orElseThrow(() -> noExecution(tracked.id()));
        if (tracked.outcome().isEmpty() && !run.cancellable()) {
            throw new ApiException(409, "not_cancellable", "this execution runs in a sandbox or on a backend that "
                    + "cannot stop it; its timeout ends it");
        }
        run.cancel();
        return CompletableFuture.completedFuture(found(tracked));
    }

    /**
     * The caller's execution {@code id} to follow. A run this node took replays its kept output, then goes live. One
     * another node took gives the output from now on (the worker sends it here too), then the outcome; one that
     * already ended gives its outcome alone (its output is in the result).
     */
    public CompletionStage<TrackedExecution> follow(Requester who, String id) {
        Optional<TrackedExecution> local = cached(who, id);
        if (local.isPresent()) {
            return CompletableFuture.completedFuture(local.get());
        }
        return fromPort(id, port.lookup(who.tenant().caller(), id)).thenApply(found -> {
            TrackedExecution follower = registry.follower(who.tenant().id(), id);
            if (found.outcome().isPresent()) {
                follower.complete(found.outcome().get());
            } else {
                port.follow(who.tenant().caller(), id, follower).thenAccept(follower::complete);
            }
            return follower;
        });
    }

    /** The registry is the port's cache for the runs this node took. */
    private Optional<TrackedExecution> cached(Requester who, String id) {
        return registry.find(who.tenant().id(), id);
    }

    private static Found found(TrackedExecution tracked) {
        return new Found(tracked.id(), Optional.of(tracked.startedAt()), tracked.outcome());
    }

    private static CompletionStage<Found> fromPort(String id, CompletionStage<Optional<ExecutionView>> answer) {
        return answer.thenApply(view -> new Found(id, ExecutionIds.startedAt(id),
                view.orElseThrow(() -> noExecution(id)).outcome()));
    }

    private static ApiException noExecution(String id) {
        return ApiException.notFound("no execution " + RequestRules.abbreviate(id));
    }
}
