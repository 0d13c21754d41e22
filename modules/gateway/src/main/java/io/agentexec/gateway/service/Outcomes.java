package io.agentexec.gateway.service;

import io.agentexec.cluster.api.ExecutionOutcome;

/** How the gateway reads a run's one outcome, for both transports: a result, or the refusal it is answered as. */
public final class Outcomes {
    private Outcomes() {
    }

    /** Whether an outcome is answered with a result (a completed run, not a cancelled one). */
    public static boolean hasResult(ExecutionOutcome outcome) {
        return outcome instanceof ExecutionOutcome.Completed && !outcome.cancelled();
    }

    /** An outcome that carries no result (or a cancelled run), as the error it is. */
    public static ApiException asError(ExecutionOutcome outcome) {
        // Java 17 has no pattern switch; the sealed interface keeps this list complete by review.
        if (outcome.cancelled()) {
            return new ApiException(409, "cancelled", ((ExecutionOutcome.Completed) outcome).result().message());
        }
        if (outcome instanceof ExecutionOutcome.Overloaded o) {
            return ApiException.unavailable("overloaded", "the cluster is overloaded: " + o.reason(), ApiException.RETRY_AFTER);
        }
        if (outcome instanceof ExecutionOutcome.NotFound n) {
            return ApiException.notFound(n.reason());
        }
        if (outcome instanceof ExecutionOutcome.Rejected r) {
            return ApiException.badRequest(r.reason());
        }
        if (outcome instanceof ExecutionOutcome.SandboxLost l) {
            return ApiException.unavailable("unavailable", "the worker running the code was lost (" + l.reason()
                    + "); the code may have run", ApiException.RETRY_AFTER);
        }
        throw new IllegalArgumentException("a completed outcome is no error");
    }

    /** The name an outcome without a result is counted under in metrics and logs. */
    public static String refusal(ExecutionOutcome outcome) {
        if (outcome.cancelled()) {
            return "cancelled";
        }
        return switch (outcome.status()) {
            case OVERLOADED -> "overloaded";
            case NOT_FOUND -> "notfound";
            case REJECTED -> "rejected";
            case SANDBOX_LOST -> "unavailable";
            case COMPLETED -> "completed";
        };
    }
}
