package io.agentexec.cluster.port;

import io.agentexec.sandbox.policy.ExecutionPolicy;
import java.util.Objects;
import java.util.Optional;

/**
 * Who a run or a sandbox is for, as the execution port sees it: a tenant (whose ids the port scopes to it, so that
 * one tenant never names another's sandbox or execution), the execution policy it is held to, and how many live
 * sandboxes it may hold (0: none; only counted for a tenant). Callers without a tenant are the node's own
 * (an in-process chat, the CLI's local exec): policy only, no quota.
 */
public record Caller(Optional<String> tenant, ExecutionPolicy policy, int maxLiveSandboxes) {
    public Caller {
        Objects.requireNonNull(tenant, "tenant");
        Objects.requireNonNull(policy, "policy");
        if (maxLiveSandboxes < 0) {
            throw new IllegalArgumentException("maxLiveSandboxes must not be negative, got " + maxLiveSandboxes);
        }
    }

    public static Caller tenant(String tenant, ExecutionPolicy policy, int maxLiveSandboxes) {
        return new Caller(Optional.of(tenant), policy, maxLiveSandboxes);
    }

    /** The node itself: no tenant, no quota. */
    public static Caller node(ExecutionPolicy policy) {
        return new Caller(Optional.empty(), policy, 0);
    }

    /** The caller's name in logs and messages. */
    public String name() {
        return tenant.orElse("(this node)");
    }
}
