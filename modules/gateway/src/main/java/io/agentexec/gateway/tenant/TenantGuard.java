package io.agentexec.gateway.tenant;

import io.agentexec.cluster.port.Callers;
import io.agentexec.gateway.service.ApiException;
import io.agentexec.gateway.spi.TenantId;
import java.time.Duration;
import java.util.Optional;
import java.util.function.IntSupplier;

/**
 * Who is calling and whether it may: the bearer key names the tenant, a token bucket bounds its
 * rate (this node's share of it, see {@link RateLimiter}); what it may run and how many sandboxes it may hold is
 * its {@link Tenant#caller()}, which the execution port applies. Shared by HTTP and gRPC.
 */
public final class TenantGuard {

    private final Optional<TenantRegistry> registry;
    private final Tenant anonymous;
    private final RateLimiter rateLimiter;

    private TenantGuard(Optional<TenantRegistry> registry, Tenant anonymous, RateLimiter rateLimiter) {
        this.registry = registry;
        this.anonymous = anonymous;
        this.rateLimiter = rateLimiter;
    }

    /**
     * @param gatewayNodes how many gateway nodes share each tenant's rate now (1 on a single node)
     */
    public static TenantGuard withKeys(TenantRegistry registry, TenantPolicy defaults, IntSupplier gatewayNodes) {
        return new TenantGuard(Optional.of(registry), new Tenant(new TenantId("anonymous"), defaults),
                new RateLimiter(System::nanoTime, gatewayNodes));
    }

    /** No authentication: every caller is the one tenant "anonymous" (loopback only; the gateway checks). */
    public static TenantGuard noAuth(TenantPolicy defaults, IntSupplier gatewayNodes) {
        return new TenantGuard(Optional.empty(), new Tenant(new TenantId("anonymous"), defaults),
                new RateLimiter(System::nanoTime, gatewayNodes));
    }

    /**
     * The tenant with this id, for work that arrives without a request of its own (a chat's code, on behalf
     * of the tenant that started the chat); empty when no such tenant is known any more.
     */
    public Optional<Tenant> tenant(TenantId id) {
        if (registry.isEmpty()) {
            return anonymous.id().equals(id) ? Optional.of(anonymous) : Optional.empty();
        }
        return registry.get().tenant(id);
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
     * The execution port's callers for tenant ids (a chat's code runs on behalf of the tenant that started the chat);
     * a tenant that is no longer known has none.
     */
    public Callers callers() {
        return tenant -> tenant.isEmpty() ? Optional.of(anonymous.caller()) : tenant(new TenantId(tenant.get())).map(Tenant::caller);
    }
}
