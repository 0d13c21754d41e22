package io.agentexec.sandbox;

import java.time.Duration;
import java.util.Locale;
import java.util.Objects;

/**
 * {@code agentexec.sandbox.zygote}: whether blocks of a language with a pre-initialised interpreter run in a fork of it
 * (see reference.conf and agentexec-agent.c).
 *
 * @param mode           {@code enabled}: zygotes on, off (every block a plain start), or {@code auto}: the engine
 *                       measures once, when it starts, which of the two costs this machine less CPU and keeps that
 *                       ({@link ZygoteProbe}); blocks fork until it has decided
 * @param minMemoryBytes blocks whose memory limit is below this get plain starts
 * @param forksPerZygote blocks one zygote serves before a fresh one replaces it; 0 for no limit
 * @param maxRestarts    zygotes replaced in a row after blocks touched them before a session keeps plain starts
 * @param startTimeout   how long a block waits for a zygote still starting before giving up on zygotes
 * @param forkTimeout    how long a block waits for a fork of the zygote before getting a plain start
 * @param probe          how {@code auto} measures
 */
public record ZygoteSettings(
        Mode mode,
        long minMemoryBytes,
        int forksPerZygote,
        int maxRestarts,
        Duration startTimeout,
        Duration forkTimeout,
        Probe probe) {

    /**
     * {@code agentexec.sandbox.zygote.probe}.
     *
     * @param blocks blocks of each kind run back to back in one measurement
     * @param rounds measurements of each kind, alternating which kind goes first (so that a machine growing busier or
     *               quieter during the probe favours neither)
     * @param margin how much more CPU a fork may cost than a plain start (0.1: 10%) and still be chosen: a fork answers
     *               sooner, so it keeps the benefit of a near tie
     */
    public record Probe(int blocks, int rounds, double margin) {
        public Probe {
            if (blocks < 1 || rounds < 1) {
                throw new IllegalArgumentException("agentexec.sandbox.zygote.probe.blocks and rounds must be 1 or more, got "
                        + blocks + " and " + rounds);
            }
            if (!(margin >= 0) || Double.isInfinite(margin)) {
                throw new IllegalArgumentException("agentexec.sandbox.zygote.probe.margin must be 0 or more, got " + margin);
            }
        }
    }

    public ZygoteSettings {
        Objects.requireNonNull(startTimeout, "startTimeout");
        Objects.requireNonNull(forkTimeout, "forkTimeout");
        Objects.requireNonNull(mode, "mode");
        Objects.requireNonNull(probe, "probe");
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

    /** The setting {@code enabled}: {@code auto}, or a boolean as HOCON spells one (true/false, on/off, yes/no). */
    public enum Mode {
        ON, OFF, AUTO;

        static Mode parse(String value) {
            return switch (value.trim().toLowerCase(Locale.ROOT)) {
                case "auto" -> AUTO;
                case "true", "on", "yes" -> ON;
                case "false", "off", "no" -> OFF;
                default -> throw new IllegalArgumentException("agentexec.sandbox.zygote.enabled (AGENTEXEC_ZYGOTE) must be "
                        + "true, false or auto, got '" + value + "'");
            };
        }
    }

    /** Whether blocks fork from zygotes now: on, or auto until the probe has decided. */
    public boolean enabled() {
        return mode != Mode.OFF;
    }

    /** Whether the engine's probe decides ({@code enabled = auto}). */
    public boolean auto() {
        return mode == Mode.AUTO;
    }

    /** Every block a plain start. */
    public static ZygoteSettings disabled() {
        return new ZygoteSettings(Mode.OFF, 0, 0, 0, Duration.ofSeconds(10), Duration.ofSeconds(5), new Probe(1, 1, 0));
    }

    /** Zygotes on or off, whatever the probe would find: also how {@code auto} records what it decided. */
    public ZygoteSettings withEnabled(boolean value) {
        return withMode(value ? Mode.ON : Mode.OFF);
    }

    /** Decided by the engine's probe when it starts. */
    public ZygoteSettings withAuto() {
        return withMode(Mode.AUTO);
    }

    private ZygoteSettings withMode(Mode value) {
        return new ZygoteSettings(value, minMemoryBytes, forksPerZygote, maxRestarts, startTimeout, forkTimeout, probe);
    }

    public ZygoteSettings withForksPerZygote(int value) {
        return new ZygoteSettings(mode, minMemoryBytes, value, maxRestarts, startTimeout, forkTimeout, probe);
    }

    public ZygoteSettings withMaxRestarts(int value) {
        return new ZygoteSettings(mode, minMemoryBytes, forksPerZygote, value, startTimeout, forkTimeout, probe);
    }
}
