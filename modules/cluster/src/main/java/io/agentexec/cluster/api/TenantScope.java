package io.agentexec.cluster.api;

import java.util.Optional;

/**
 * How a tenant's things are named in the cluster: {@code TENANT.ID}. Tenant ids hold no '.', so the
 * prefix is unambiguous; a tenant never names another's sandbox or conversation, because every id it
 * gives is scoped to it before it reaches an entity. One convention for sandboxes, conversations and the
 * sandboxes a conversation's code runs in (which therefore count against the same tenant's quota).
 */
public final class TenantScope {
    private static final char SEPARATOR = '.';

    private TenantScope() {
    }

    /** {@code id} as the tenant's own: {@code TENANT.ID}. */
    public static String scoped(String tenant, String id) {
        if (tenant.indexOf(SEPARATOR) >= 0 || tenant.isEmpty()) {
            throw new IllegalArgumentException("a tenant id is non-empty and holds no '.': " + tenant);
        }
        return tenant + SEPARATOR + id;
    }

    /** The tenant a scoped id belongs to; empty for an id made outside any tenant (in-process chats, tests). */
    public static Optional<String> tenantOf(String scopedId) {
        int dot = scopedId.indexOf(SEPARATOR);
        return dot > 0 ? Optional.of(scopedId.substring(0, dot)) : Optional.empty();
    }
}
