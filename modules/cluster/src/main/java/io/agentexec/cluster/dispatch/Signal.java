package io.agentexec.cluster.dispatch;

import io.agentexec.cluster.worker.ExecutionWorker;

/**
 * A message of the {@link Dispatch}'s own: a worker's (or placement's) answer, a watched worker stopping, a
 * watchdog or a retry timer. It reaches the entity wrapped in one of its commands; the entity hands it back
 * to {@link Dispatch#on}.
 */
public sealed interface Signal {

    record WorkerAnswered(ExecutionWorker.Reply reply) implements Signal {
    }

    /** The worker that had the job {@code jobId} stopped (its node left the cluster). */
    record WorkerTerminated(String worker, String jobId) implements Signal {
    }

    record WatchdogExpired(String jobId, String why) implements Signal {
    }

    /** {@code generation} tells a retry timer from one that was replaced. */
    record RetryDue(int generation) implements Signal {
    }
}
