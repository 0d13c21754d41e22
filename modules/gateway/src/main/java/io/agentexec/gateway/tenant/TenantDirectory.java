package io.agentexec.gateway.tenant;

import io.agentexec.gateway.spi.TenantId;
import java.util.Optional;

/**
 * Who holds which API key: a keys file read at start ({@link TenantRegistry}, the engine backend's single node) or
 * the cluster's database, re-read every refresh interval ({@link DatabaseTenants}).
 */
public sealed interface TenantDirectory permits TenantRegistry, DatabaseTenants {

    /** The tenant holding this key, when it is one and is not revoked. */
    Optional<Tenant> authenticate(String apiKey);

    /** The tenant with this id, when one holds a key. */
    Optional<Tenant> tenant(TenantId id);
}
