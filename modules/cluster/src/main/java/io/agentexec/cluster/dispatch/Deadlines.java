package io.agentexec.cluster.dispatch;

import io.agentexec.cluster.ClusterSettings.ExecutionSettings;
import java.time.Duration;
import java.util.Objects;

/**
 * The one place that turns a run's timeout into deadlines: how long an attempt may stay silent once
 * started or queued before its worker counts as lost, and how long a caller waits for the outcome
 * (every attempt, the wait for capacity, and slack).
 */
public record Deadlines(ExecutionSettings settings) {

    public Deadlines {
        Objects.requireNonNull(settings, "settings");
    }

    /** A started attempt with no answer after this is lost: the run's timeout plus {@code run-watchdog-slack}. */
    public Duration started(Duration runTimeout) {
        return runTimeout.plus(settings.runWatchdogSlack());
    }

    /** An accepted attempt that has not started after this is lost ({@code queued-watchdog}). */
    public Duration queued() {
        return settings.queuedWatchdog();
    }

    /**
     * How long a caller waits for the outcome of a run with this timeout: every attempt may take it, a retry
     * may wait {@code retry-capacity-wait} for a worker, plus {@code reply-timeout-slack}.
     */
    public Duration outcome(Duration runTimeout) {
        return runTimeout.multipliedBy(settings.maxAttempts()).plus(settings.retryCapacityWait())
                .plus(settings.replyTimeoutSlack());
    }
}
