package io.agentexec.gateway.tenant;

import com.typesafe.config.Config;

/**
 * A tenant's quotas and the ceilings of its request limits. Limits asked above a ceiling are
 * clamped to it, so a tenant never runs unlimited.
 */
public record TenantPolicy(int maxLiveSandboxes, double requestsPerSecond, int burst, double maxTimeoutSeconds,
                           long maxMemoryMb, double maxCpus, int maxPids, long maxOutputBytes) {

    public TenantPolicy {
        if (maxLiveSandboxes < 0 || !(requestsPerSecond > 0) || burst < 1 || !(maxTimeoutSeconds > 0)
                || maxMemoryMb < 6 || !(maxCpus > 0) || maxPids < 1 || maxOutputBytes < 1) {
            throw new IllegalArgumentException("tenant policy out of range: " + TenantPolicy.class.getSimpleName());
        }
    }

    public static TenantPolicy fromConfig(Config c) {
        return new TenantPolicy(
                c.getInt("max-live-sandboxes"),
                c.getDouble("requests-per-second"),
                c.getInt("burst"),
                c.getDouble("max-limits.timeout-seconds"),
                c.getLong("max-limits.memory-mb"),
                c.getDouble("max-limits.cpus"),
                c.getInt("max-limits.pids"),
                c.getBytes("max-limits.output-bytes"));
    }
}
