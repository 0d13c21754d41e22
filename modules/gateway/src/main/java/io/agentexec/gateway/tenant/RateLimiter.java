package io.agentexec.gateway.tenant;

import io.agentexec.gateway.spi.TenantId;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.IntSupplier;
import java.util.function.LongSupplier;

/**
 * A token bucket per tenant: {@code requestsPerSecond} sustained, {@code burst} at once, cluster-wide.
 * Each of the {@code n} reachable gateway nodes enforces its share, rate / n and burst / n (at least
 * one token, so a tenant is never locked out of a node): behind a load balancer that spreads requests
 * over the nodes the sum holds the tenant's limit with no coordination per request. {@code n} follows
 * the cluster's membership; a bucket takes the new share at its next request.
 */
public final class RateLimiter {
    private final Map<TenantId, Bucket> buckets = new ConcurrentHashMap<>();
    private final LongSupplier nanoClock;
    private final IntSupplier gatewayNodes;

    public RateLimiter(LongSupplier nanoClock, IntSupplier gatewayNodes) {
        this.nanoClock = nanoClock;
        this.gatewayNodes = gatewayNodes;
    }

    /** Empty duration when admitted; otherwise how long until a token is free (for Retry-After). */
    public Duration acquire(Tenant tenant) {
        int nodes = Math.max(1, gatewayNodes.getAsInt());
        double rate = tenant.policy().requestsPerSecond() / nodes;
        double burst = Math.max(1.0, (double) tenant.policy().burst() / nodes);
        Bucket bucket = buckets.computeIfAbsent(tenant.id(), id -> new Bucket(burst, nanoClock.getAsLong()));
        return bucket.take(rate, burst, nanoClock.getAsLong());
    }

    private static final class Bucket {
        private double tokens;
        private long lastNanos;

        Bucket(double tokens, long now) {
            this.tokens = tokens;
            this.lastNanos = now;
        }

        synchronized Duration take(double rate, double burst, long now) {
            double refill = (now - lastNanos) / 1e9 * rate;
            tokens = Math.min(burst, tokens + refill);
            lastNanos = now;
            if (tokens >= 1) {
                tokens -= 1;
                return Duration.ZERO;
            }
            double waitSeconds = (1 - tokens) / rate;
            return Duration.ofNanos((long) Math.ceil(waitSeconds * 1e9));
        }
    }
}
