package io.agentexec.sandbox;

import java.time.Duration;
import java.util.Objects;

/**
 * {@code agentexec.sandbox.zygote}: whether blocks of a language with a pre-initialised interpreter run in a fork of it
 * (see reference.conf and agentexec-agent.c).
 *
 * @param enabled        off: every block is a plain start
 * @param minMemoryBytes blocks whose memory limit is below this get plain starts
 * @param forksPerZygote blocks one zygote serves before a fresh one replaces it; 0 for no limit
 * @param maxRestarts    zygotes replaced in a row after blocks touched them before a session keeps plain starts
 * @param startTimeout   how long a block waits for a zygote still starting before giving up on zygotes
 * @param forkTimeout    how long a block waits for a fork of the zygote before getting a plain start
 */
public record ZygoteSettings(
        boolean enabled,
        long minMemoryBytes,
        int forksPerZygote,
        int maxRestarts,
        Duration startTimeout,
        Duration forkTimeout) {

    public ZygoteSettings {
        Objects.requireNonNull(startTimeout, "startTimeout");
        Objects.requireNonNull(forkTimeout, "forkTimeout");
        if (minMemoryBytes < 0) {
            throw new IllegalArgumentException("agentexec.sandbox.zygote.min-memory must not be negative, got " + minMemoryBytes);
        }
        if (forksPerZygote < 0) {
            throw new IllegalArgumentException("agentexec.sandbox.zygote.forks-per-zygote must be 0 (no limit) or more, got "
                    + forksPerZygote);
        }
        if (maxRestarts < 0) {
            throw new IllegalArgumentException("agentexec.sandbox.zygote.max-restarts must not be negative, got " + maxRestarts);
        }
        for (Duration d : new Duration[] {startTimeout, forkTimeout}) {
            if (d.isNegative() || d.isZero() || d.toMillis() > Integer.MAX_VALUE) {
                throw new IllegalArgumentException("agentexec.sandbox.zygote.start-timeout and fork-timeout must be positive"
                        + " and below 24 days, got " + d);
            }
        }
    }

    /** Every block a plain start. */
    public static ZygoteSettings disabled() {
        return new ZygoteSettings(false, 0, 0, 0, Duration.ofSeconds(10), Duration.ofSeconds(5));
    }

    public ZygoteSettings withEnabled(boolean value) {
        return new ZygoteSettings(value, minMemoryBytes, forksPerZygote, maxRestarts, startTimeout, forkTimeout);
    }

    public ZygoteSettings withForksPerZygote(int value) {
        return new ZygoteSettings(enabled, minMemoryBytes, value, maxRestarts, startTimeout, forkTimeout);
    }

    public ZygoteSettings withMaxRestarts(int value) {
        return new ZygoteSettings(enabled, minMemoryBytes, forksPerZygote, value, startTimeout, forkTimeout);
    }
}
