package io.agentexec.gateway.tenant;

import io.agentexec.gateway.spi.TenantId;
import java.util.Objects;

/** An authenticated caller and what it may do. */
public record Tenant(TenantId id, TenantPolicy policy) {
    public Tenant {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(policy, "policy");
    }
}
