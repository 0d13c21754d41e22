package io.agentexec.cluster.executors;

import io.agentexec.cluster.CborSerializable;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Verdict;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletionStage;

/**
 * CachingExecutor's result cache, per tenant: cluster-wide and in the journal ({@link ClusterResultCache}) or this
 * JVM's memory ({@link LocalResultCache}, for the engine-only node and the CLI).
 */
public interface ResultCache {

    /** A result kept, and when. Never a SANDBOX_ERROR (infrastructure) or CANCELLED one. */
    record CachedRun(ExecutionResult result, Instant storedAt) implements CborSerializable {
        public CachedRun {
            Objects.requireNonNull(result, "result");
            Objects.requireNonNull(storedAt, "storedAt");
            if (!cacheable(result.verdict())) {
                throw new IllegalArgumentException("a " + result.verdict() + " result is never cached");
            }
        }
    }

    /** What may be cached: everything judged about the user's code; never an infrastructure failure or a cancel. */
    static boolean cacheable(Verdict verdict) {
        return verdict != Verdict.SANDBOX_ERROR && verdict != Verdict.CANCELLED;
    }

    /** The tenant's result under {@code key}, if one was stored (the caller judges its age). */
    CompletionStage<Optional<CachedRun>> lookup(Optional<String> tenant, String key);

    /** Keeps {@code run} under {@code key} for the tenant, replacing what was there. */
    CompletionStage<Void> store(Optional<String> tenant, String key, CachedRun run);
}
