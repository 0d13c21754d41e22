package io.agentexec.gateway.tenant;

import io.agentexec.gateway.spi.TenantId;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;

/** A token bucket per tenant: {@code requestsPerSecond} sustained, {@code burst} at once. */
public final class RateLimiter {
    private final Map<TenantId, Bucket> buckets = new ConcurrentHashMap<>();
    private final LongSupplier nanoClock;

    public RateLimiter(LongSupplier nanoClock) {
        this.nanoClock = nanoClock;
    }

    /** Empty duration when admitted; otherwise how long until a token is free (for Retry-After). */
    public Duration acquire(Tenant tenant) {
        Bucket bucket = buckets.computeIfAbsent(tenant.id(), id -> new Bucket(tenant.policy().burst(), nanoClock.getAsLong()));
        return bucket.take(tenant.policy(), nanoClock.getAsLong());
    }

    private static final class Bucket {
        private double tokens;
        private long lastNanos;

        Bucket(double tokens, long now) {
            this.tokens = tokens;
            this.lastNanos = now;
        }

        synchronized Duration take(TenantPolicy policy, long now) {
            double refill = (now - lastNanos) / 1e9 * policy.requestsPerSecond();
            tokens = Math.min(policy.burst(), tokens + refill);
            lastNanos = now;
            if (tokens >= 1) {
                tokens -= 1;
                return Duration.ZERO;
            }
            double waitSeconds = (1 - tokens) / policy.requestsPerSecond();
            return Duration.ofNanos((long) Math.ceil(waitSeconds * 1e9));
        }
    }
}
