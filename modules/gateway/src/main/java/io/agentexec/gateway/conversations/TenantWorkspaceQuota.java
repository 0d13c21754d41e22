package io.agentexec.gateway.conversations;

import io.agentexec.agents.execution.WorkspaceQuota;
import io.agentexec.gateway.http.ApiException;
import io.agentexec.gateway.spi.TenantId;
import io.agentexec.gateway.tenant.Tenant;
import io.agentexec.gateway.tenant.TenantGuard;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;

/**
 * The tenants' live-sandbox quota for the sandboxes their chats' code runs in: the same slots, the same
 * maximum, as sandboxes made over HTTP or gRPC ({@link TenantGuard#reserveSandbox}).
 */
public final class TenantWorkspaceQuota implements WorkspaceQuota {
    private final TenantGuard guard;

    public TenantWorkspaceQuota(TenantGuard guard) {
        this.guard = guard;
    }

    @Override
    public CompletionStage<Optional<String>> reserve(String tenantId, String sandboxId) {
        Optional<Tenant> tenant = guard.tenant(new TenantId(tenantId));
        if (tenant.isEmpty()) {
            return CompletableFuture.completedFuture(Optional.of("tenant " + tenantId + " is not known (any more)"));
        }
        return guard.reserveSandbox(tenant.get(), sandboxId).handle((ok, error) -> {
            if (error == null) {
                return Optional.empty();
            }
            Throwable e = error instanceof CompletionException && error.getCause() != null ? error.getCause() : error;
            if (e instanceof ApiException api) {
                return Optional.of(api.getMessage());
            }
            throw new CompletionException(e);
        });
    }

    @Override
    public CompletionStage<Void> release(String tenantId, String sandboxId) {
        return guard.tenant(new TenantId(tenantId))
                .map(tenant -> guard.releaseSandbox(tenant, sandboxId))
                .orElseGet(() -> CompletableFuture.completedFuture(null));
    }
}
