package io.agentexec.cluster.sandbox;

import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.sandbox.SandboxEntity.AttemptFailed;
import io.agentexec.cluster.sandbox.SandboxEntity.BoundToWorker;
import io.agentexec.cluster.sandbox.SandboxEntity.Closed;
import io.agentexec.cluster.sandbox.SandboxEntity.Created;
import io.agentexec.cluster.sandbox.SandboxEntity.Event;
import io.agentexec.cluster.sandbox.SandboxEntity.ExecutionFinished;
import io.agentexec.cluster.sandbox.SandboxEntity.ExecutionRefused;
import io.agentexec.cluster.sandbox.SandboxEntity.ExecutionStarted;
import io.agentexec.cluster.sandbox.SandboxEntity.Expired;
import io.agentexec.cluster.sandbox.SandboxEntity.WorkspaceLost;
import io.agentexec.sandbox.model.Limits;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * What a sandbox's events add up to (never stored itself: the entity saves no snapshots).
 *
 * @param worker        the worker holding its container, when bound
 * @param executions    executions that ended with a recorded outcome
 * @param workspaceLost set when its container was lost; the next execution's outcome says so
 * @param inFlight      the execution whose start (or failed attempt) is recorded and whose end is not
 * @param recent        the last {@code remembered-results} outcomes, by key, for repeats and other nodes
 */
public record SandboxState(SandboxView.Status status, Optional<SandboxSpec> spec, Optional<String> worker,
                           long executions, Optional<String> workspaceLost, Optional<InFlight> inFlight,
                           List<Remembered> recent, Optional<String> closedReason) {

    /** An execution under way: its current worker ("" while it waits to be retried) and the attempts that failed. */
    public record InFlight(String executionKey, String worker, List<Attempt> failedAttempts) {
    }

    public record Remembered(String executionKey, ExecutionOutcome reply) {
    }

    static SandboxState none() {
        return new SandboxState(SandboxView.Status.NONE, Optional.empty(), Optional.empty(), 0,
                Optional.empty(), Optional.empty(), List.of(), Optional.empty());
    }

    Optional<String> language() {
        return spec.map(SandboxSpec::language);
    }

    Optional<Limits> limits() {
        return spec.map(SandboxSpec::limits);
    }

    boolean is(SandboxView.Status other) {
        return status == other;
    }

    Optional<ExecutionOutcome> remembered(String key) {
        return recent.stream().filter(r -> r.executionKey().equals(key)).map(Remembered::reply).findFirst();
    }

    SandboxState with(Event event, int rememberedResults) {
        if (event instanceof Created c) {
            return new SandboxState(SandboxView.Status.ACTIVE, Optional.of(c.spec()),
                    Optional.empty(), executions, Optional.empty(), Optional.empty(), recent, Optional.empty());
        }
        if (event instanceof BoundToWorker b) {
            return new SandboxState(SandboxView.Status.ACTIVE, spec, Optional.of(b.worker()), executions,
                    workspaceLost, inFlight, recent, closedReason);
        }
        if (event instanceof ExecutionStarted s) {
            List<Attempt> failed = inFlight.filter(f -> f.executionKey().equals(s.executionKey()))
                    .map(InFlight::failedAttempts).orElse(List.of());
            return new SandboxState(status, spec, worker, executions, workspaceLost,
                    Optional.of(new InFlight(s.executionKey(), s.worker(), failed)), recent, closedReason);
        }
        if (event instanceof AttemptFailed f) {
            List<Attempt> failed = new ArrayList<>(inFlight.map(InFlight::failedAttempts).orElse(List.of()));
            failed.add(f.attempt());
            return new SandboxState(status, spec, Optional.empty(), executions, workspaceLost,
                    Optional.of(new InFlight(f.executionKey(), "", List.copyOf(failed))), recent, closedReason);
        }
        if (event instanceof ExecutionFinished f) {
            boolean lost = f.reply() instanceof ExecutionOutcome.SandboxLost;
            Optional<String> lostReason = lost
                    ? Optional.of(((ExecutionOutcome.SandboxLost) f.reply()).reason())
                    : f.reply() instanceof ExecutionOutcome.Completed ? Optional.empty() : workspaceLost;
            return new SandboxState(status, spec, lost ? Optional.empty() : worker, executions + 1,
                    lostReason, Optional.empty(), remember(f.executionKey(), f.reply(), rememberedResults), closedReason);
        }
        if (event instanceof ExecutionRefused r) {
            // remembered as its outcome; nothing ran, so the sandbox itself is as it was
            return new SandboxState(status, spec, worker, executions, workspaceLost, inFlight, remember(r.executionKey(),
                    new ExecutionOutcome.Overloaded(r.executionKey(), r.reason()), rememberedResults), closedReason);
        }
        if (event instanceof WorkspaceLost w) {
            return new SandboxState(status, spec, Optional.empty(), executions, Optional.of(w.reason()),
                    inFlight, recent, closedReason);
        }
        if (event instanceof Expired e) {
            return new SandboxState(SandboxView.Status.EXPIRED, spec, Optional.empty(), executions,
                    Optional.of(e.reason()), Optional.empty(), recent, closedReason);
        }
        Closed c = (Closed) event;
        return new SandboxState(SandboxView.Status.CLOSED, spec, Optional.empty(), executions, workspaceLost,
                Optional.empty(), recent, Optional.of(c.reason()));
    }

    private List<Remembered> remember(String key, ExecutionOutcome outcome, int rememberedResults) {
        List<Remembered> kept = new ArrayList<>(recent);
        kept.add(new Remembered(key, outcome));
        while (kept.size() > rememberedResults) {
            kept.remove(0);
        }
        return List.copyOf(kept);
    }
}
