package io.agentexec.cluster.port;

import java.util.Optional;

/**
 * The caller a tenant id stands for, for work that arrives without a request of its own (a chat's code runs on
 * behalf of the tenant that started the chat). The node's wiring supplies it from wherever tenants are kept.
 */
@FunctionalInterface
public interface Callers {
    /** The caller for {@code tenant}; for an empty tenant, the node itself. Empty when the tenant is not known. */
    Optional<Caller> of(Optional<String> tenant);
}
