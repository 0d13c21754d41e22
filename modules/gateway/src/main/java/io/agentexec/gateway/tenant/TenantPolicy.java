package io.agentexec.gateway.tenant;

import com.typesafe.config.Config;
import io.agentexec.sandbox.policy.ExecutionPolicy;
import java.util.Objects;

/**
 * A tenant's quotas (live sandboxes, request rate) and the execution policy its runs are held to: the
 * operator's one {@link ExecutionPolicy} ({@code agentexec.policy}), which every path that runs code
 * applies, this gateway's included.
 */
public record TenantPolicy(int maxLiveSandboxes, double requestsPerSecond, int burst, ExecutionPolicy execution) {

    public TenantPolicy {
        if (maxLiveSandboxes < 0 || !(requestsPerSecond > 0) || burst < 1) {
            throw new IllegalArgumentException("tenant policy out of range: max-live-sandboxes >= 0, "
                    + "requests-per-second > 0 and burst >= 1 are required");
        }
        Objects.requireNonNull(execution, "execution");
    }

    /** Reads {@code agentexec.gateway.tenant-defaults}; the execution policy is the node's one. */
    public static TenantPolicy fromConfig(Config c, ExecutionPolicy execution) {
        return new TenantPolicy(
                c.getInt("max-live-sandboxes"),
                c.getDouble("requests-per-second"),
                c.getInt("burst"),
                execution);
    }
}
