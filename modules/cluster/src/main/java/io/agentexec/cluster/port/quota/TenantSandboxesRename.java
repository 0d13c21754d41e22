package io.agentexec.cluster.port.quota;

import com.fasterxml.jackson.databind.JsonNode;
import org.apache.pekko.serialization.jackson.JacksonMigration;

/**
 * Journals written before the tenants' quota moved from the gateway module into the execution port name its
 * events and snapshots {@code io.agentexec.gateway.cluster.TenantSandboxes$...}: read them as today's classes
 * (registered for each old name in this module's reference.conf).
 */
public final class TenantSandboxesRename extends JacksonMigration {
    private static final String OLD = "io.agentexec.gateway.cluster.TenantSandboxes$";

    @Override
    public int currentVersion() {
        return 2;
    }

    @Override
    public String transformClassName(int fromVersion, String className) {
        return className.startsWith(OLD)
                ? TenantSandboxes.class.getName() + "$" + className.substring(OLD.length())
                : className;
    }

    @Override
    public JsonNode transform(int fromVersion, JsonNode json) {
        return json;
    }
}
