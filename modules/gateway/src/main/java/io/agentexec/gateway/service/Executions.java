package io.agentexec.gateway.service;

import io.agentexec.cluster.api.ExecutionOutcome;
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
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
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

    /** A run this node started: its tracker (id, output, outcome) and the port's handle. */
    public record Started(TrackedExecution tracked, RunHandle run) {
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

    Executions(ExecutionPort port, ExecutionRegistry registry, RequestRules rules, Metrics metrics, Draining draining,
               Duration askTimeout) {
        this.port = port;
        this.registry = registry;
        this.rules = rules;
        this.metrics = metrics;
        this.draining = draining;
        this.askTimeout = askTimeout;
    }

    /**
     * Starts the run a transport reads into a form ({@code read}: its wire format, field by field). Output always
     * goes to the run's tracker, so that every run is followable by its id.
     *
     * @param async whether the client waits for the result elsewhere (only logged)
     */
    public Started start(Requester who, boolean async, Consumer<ExecutionForm> read) {
        draining.refuseNewWork();
        ExecutionForm form = rules.execution(who.tenant().policy());
        read.accept(form);
        ExecutionSpec spec = form.build();
        TrackedExecution tracked = registry.register(who.tenant().id(), spec.sandboxId());
        Map<String, String> ids = who.logIds();
        ids.put("executionId", tracked.id());
        RunHandle run = port.start(who.tenant().caller(), tracked.id(), spec.sandboxId(), spec.request(), tracked);
        tracked.attach(run);
        run.outcome().thenAccept(outcome -> {
            tracked.complete(outcome);
            record(outcome, ids);
        });
        RequestLog.info(log, ids, "execution accepted ({} block(s), sandbox {}, async {})",
                spec.request().blocks().size(), spec.sandboxId().orElse("none"), async);
        return new Started(tracked, run);
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
