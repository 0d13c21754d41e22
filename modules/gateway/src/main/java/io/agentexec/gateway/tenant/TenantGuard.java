package io.agentexec.gateway.tenant;

import io.agentexec.gateway.http.ApiException;
import io.agentexec.gateway.spi.SandboxQuota;
import io.agentexec.gateway.spi.TenantId;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.function.IntSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Who is calling and whether it may: the bearer key names the tenant, a token bucket bounds its
 * rate (this node's share of it, see {@link RateLimiter}), and live sandboxes are counted against its
 * quota where the backend keeps them (cluster-wide on the cluster backend). Shared by HTTP and gRPC.
 */
public final class TenantGuard {
    private static final Logger log = LoggerFactory.getLogger(TenantGuard.class);
    /** A sandbox frees up when its owner deletes it; there is no better guess at when that is. */
    private static final Duration SANDBOX_QUOTA_RETRY = Duration.ofSeconds(10);

    private final Optional<TenantRegistry> registry;
    private final Tenant anonymous;
    private final RateLimiter rateLimiter;
    private final SandboxQuota quota;

    private TenantGuard(Optional<TenantRegistry> registry, Tenant anonymous, RateLimiter rateLimiter, SandboxQuota quota) {
        this.registry = registry;
        this.anonymous = anonymous;
        this.rateLimiter = rateLimiter;
        this.quota = quota;
    }

    /**
     * @param gatewayNodes how many gateway nodes share each tenant's rate now (1 on a single node)
     */
    public static TenantGuard withKeys(TenantRegistry registry, TenantPolicy defaults, SandboxQuota quota,
                                       IntSupplier gatewayNodes) {
        return new TenantGuard(Optional.of(registry), new Tenant(new TenantId("anonymous"), defaults),
                new RateLimiter(System::nanoTime, gatewayNodes), quota);
    }

    /** No authentication: every caller is the one tenant "anonymous" (loopback only; the gateway checks). */
    public static TenantGuard noAuth(TenantPolicy defaults, SandboxQuota quota, IntSupplier gatewayNodes) {
        return new TenantGuard(Optional.empty(), new Tenant(new TenantId("anonymous"), defaults),
                new RateLimiter(System::nanoTime, gatewayNodes), quota);
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
     * Takes a slot for the sandbox about to be created under {@code sandboxId}, within the tenant's
     * quota; fails with 429 when the tenant holds its maximum. Give it back with {@link #releaseSandbox}
     * when the create fails or the sandbox is deleted.
     */
    public CompletionStage<Void> reserveSandbox(Tenant tenant, String sandboxId) {
        int max = tenant.policy().maxLiveSandboxes();
        return quota.reserve(tenant.id(), sandboxId, max).thenApply(decision -> {
            if (decision instanceof SandboxQuota.Refused refused) {
                throw ApiException.tooManyRequests("sandbox_quota", "tenant " + tenant.id() + " holds " + refused.held()
                        + " live sandboxes, its maximum of " + max + "; delete one first", SANDBOX_QUOTA_RETRY);
            }
            return null;
        });
    }

    /**
     * Gives the sandbox's slot back. Never fails: a release that does not get through is logged, and
     * the slot is freed anyway when the quota next finds the sandbox closed.
     */
    public CompletionStage<Void> releaseSandbox(Tenant tenant, String sandboxId) {
        return quota.release(tenant.id(), sandboxId).exceptionally(error -> {
            log.warn("giving back the quota slot of sandbox {} of tenant {} failed: {}", sandboxId, tenant.id(),
                    error.toString());
            return null;
        });
    }
}
