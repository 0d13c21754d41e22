package io.agentexec.gateway.tenant;

import io.agentexec.cluster.port.Caller;
import io.agentexec.gateway.spi.TenantId;
import java.util.Objects;

/** An authenticated caller and what it may do. */
public record Tenant(TenantId id, TenantPolicy policy) {
    public Tenant {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(policy, "policy");
    }

    /** The tenant as the execution port knows it: its scope, its execution policy and its live-sandbox maximum. */
    public Caller caller() {
        return Caller.tenant(id.value(), policy.execution(), policy.maxLiveSandboxes());
    }
}
