package io.agentexec.agents.llm;

import com.typesafe.config.Config;
import java.time.Duration;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Retries of a model call on 429 (rate limited), 5xx and transport failures: exponential backoff
 * with jitter, from {@code agentexec.agents.llm.retry}.
 */
public record RetryPolicy(int maxAttempts, Duration minBackoff, Duration maxBackoff, double randomFactor) {
    public RetryPolicy {
        if (maxAttempts < 1) {
            throw new IllegalArgumentException("agentexec.agents.llm.retry.max-attempts must be at least 1, got " + maxAttempts);
        }
    }

    public static RetryPolicy fromConfig(Config c) {
        return new RetryPolicy(c.getInt("max-attempts"), c.getDuration("min-backoff"), c.getDuration("max-backoff"),
                c.getDouble("random-factor"));
    }

    /** The pause before attempt {@code n + 1} after attempt {@code n} (1-based) failed. */
    public Duration backoffAfter(int n) {
        long base = minBackoff.toMillis() << Math.min(Math.max(n - 1, 0), 20);
        long capped = Math.min(base, maxBackoff.toMillis());
        double jitter = 1 + ThreadLocalRandom.current().nextDouble() * randomFactor;
        return Duration.ofMillis((long) (capped * jitter));
    }
}
