package io.agentexec.gateway.tenant;

import io.agentexec.gateway.http.ApiException;
import io.agentexec.gateway.spi.SandboxService;
import io.agentexec.gateway.spi.TenantId;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Who is calling and whether it may: the bearer key names the tenant, a token bucket bounds its
 * rate, and live sandboxes are counted against its quota. Shared by HTTP and gRPC.
 */
public final class TenantGuard {
    /** A sandbox frees up when its owner deletes it; there is no better guess at when that is. */
    private static final Duration SANDBOX_QUOTA_RETRY = Duration.ofSeconds(10);

    private final Optional<TenantRegistry> registry;
    private final Tenant anonymous;
    private final RateLimiter rateLimiter;
    private final SandboxService sandboxes;
    private final Map<TenantId, AtomicInteger> creating = new ConcurrentHashMap<>();

    private TenantGuard(Optional<TenantRegistry> registry, Tenant anonymous, RateLimiter rateLimiter, SandboxService sandboxes) {
        this.registry = registry;
        this.anonymous = anonymous;
        this.rateLimiter = rateLimiter;
        this.sandboxes = sandboxes;
    }

    public static TenantGuard withKeys(TenantRegistry registry, TenantPolicy defaults, SandboxService sandboxes) {
        return new TenantGuard(Optional.of(registry), new Tenant(new TenantId("anonymous"), defaults),
                new RateLimiter(System::nanoTime), sandboxes);
    }

    /** No authentication: every caller is the one tenant "anonymous" (loopback only; the gateway checks). */
    public static TenantGuard noAuth(TenantPolicy defaults, SandboxService sandboxes) {
        return new TenantGuard(Optional.empty(), new Tenant(new TenantId("anonymous"), defaults),
                new RateLimiter(System::nanoTime), sandboxes);
    }

    /** Authenticates from an Authorization header value and takes a rate token; throws 401 or 429. */
    public Tenant admit(Optional<String> authorization) {
        Tenant tenant = authenticate(authorization);
        Duration wait = rateLimiter.acquire(tenant);
        if (!wait.isZero()) {
            throw ApiException.tooManyRequests("rate_limited", "tenant " + tenant.id() + " is over its rate of "
                    + tenant.policy().requestsPerSecond() + " requests per second", wait);
        }
        return tenant;
    }

    private Tenant authenticate(Optional<String> authorization) {
        if (registry.isEmpty()) {
            return anonymous;
        }
        String value = authorization.orElseThrow(() -> new ApiException(401, "unauthenticated",
                "missing 'Authorization: Bearer <api key>'"));
        if (!value.regionMatches(true, 0, "Bearer ", 0, 7)) {
            throw new ApiException(401, "unauthenticated", "the Authorization header must be 'Bearer <api key>'");
        }
        return registry.get().authenticate(value.substring(7).trim())
                .orElseThrow(() -> new ApiException(401, "unauthenticated", "unknown API key"));
    }

    /**
     * Reserves a place for a new sandbox within the tenant's quota (429 when full); the caller
     * releases the reservation once the sandbox exists or failed.
     */
    public AutoCloseable reserveSandbox(Tenant tenant) {
        AtomicInteger pending = creating.computeIfAbsent(tenant.id(), id -> new AtomicInteger());
        synchronized (pending) {
            int live = sandboxes.liveSandboxes(tenant.id()) + pending.get();
            if (live >= tenant.policy().maxLiveSandboxes()) {
                throw ApiException.tooManyRequests("sandbox_quota", "tenant " + tenant.id() + " holds " + live
                        + " live sandboxes, its maximum; delete one first", SANDBOX_QUOTA_RETRY);
            }
            pending.incrementAndGet();
        }
        return pending::decrementAndGet;
    }
}
