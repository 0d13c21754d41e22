package io.agentexec.sandbox.docker;

import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import io.agentexec.sandbox.options.OptionRules;
import io.agentexec.sandbox.options.SandboxUser;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * Settings of the Docker backend, from {@code agentexec.sandbox.docker} in config.
 *
 * @param warmImages     images to keep pre-created containers of
 * @param warmPoolSize   the floor of ready containers kept per warm image when there is no demand (0: no warm pool)
 * @param pool           how the warm pool follows demand above that floor, within a memory budget
 * @param maxConcurrentCreates containers being made ({@code docker create} + start) at once, by the pool and by
 *                       sessions the pool does not serve together
 * @param recycle        one-offs' containers scrubbed and kept for the same owner instead of removed
 * @param poolLimits     limits the pooled containers are created with (a session may change memory, CPUs, pids)
 * @param workspace      where the workspace tmpfs is mounted inside the container
 * @param runtimeHostPids per OCI runtime with a kernel of its own, the pids limit of its host cgroup: the
 *                       runtime's own threads and helper processes count there (gVisor's sentry and its ptrace
 *                       stubs), so the user's limit is enforced inside and this one only protects the host
 * @param removal        how closed sessions' containers are removed: after the caller got its answer, in the background
 * @param allowedRuntimes runtimes a sandbox may ask for besides the configured one ({@code defaults.runtime()}, empty
 *                       for the daemon's default); empty: only the configured one (see {@link OptionRules#runtimeProblem})
 * @param runtimeProbe   the health run each runtime the engine may use gets at start
 */
public record DockerBackendSettings(
        SandboxOptions defaults,
        List<String> warmImages,
        int warmPoolSize,
        Limits poolLimits,
        String workspace,
        Duration agentStartTimeout,
        Set<String> allowedNetworks,
        Set<String> allowedRuntimes,
        Map<String, Integer> runtimeHostPids,
        Removal removal,
        RuntimeProbe runtimeProbe,
        Pool pool,
        int maxConcurrentCreates,
        Recycle recycle) {

    /**
     * How the warm pool of each warm image follows demand (see {@link PoolSizing}): ready containers enough for the
     * takes that arrive while one is being made, above the floor ({@code warm-pool.size}) and below {@code maxSize},
     * shrinking back to the floor when the image sees no take for {@code idleTimeout}; every container the pool holds
     * (ready, being made, recycled and idle) counts its memory limit against {@code memoryBudgetBytes}.
     *
     * @param demandWindow the time constant of the recent rate of takes
     * @param headroom     how many creation times' worth of takes to keep ready
     * @param takeTimeout  how long a session or one-off waits for a container from the pool before it is refused
     * @param tick         how often targets are recomputed and idle containers retired
     */
    public record Pool(int maxSize, long memoryBudgetBytes, Duration demandWindow, double headroom,
                       Duration idleTimeout, Duration takeTimeout, Duration tick) {
        public Pool {
            if (maxSize < 0) {
                throw new IllegalArgumentException("warm-pool.max-size must not be negative, got " + maxSize);
            }
            if (memoryBudgetBytes < 0) {
                throw new IllegalArgumentException("warm-pool.memory-budget must not be negative, got " + memoryBudgetBytes);
            }
            if (!(headroom >= 1) || Double.isInfinite(headroom)) {
                throw new IllegalArgumentException("warm-pool.headroom must be a number of at least 1, got " + headroom);
            }
            for (Duration d : new Duration[] {demandWindow, idleTimeout, takeTimeout, tick}) {
                Objects.requireNonNull(d, "warm-pool durations");
                if (d.isNegative() || d.isZero()) {
                    throw new IllegalArgumentException("warm-pool.demand-window, idle-timeout, take-timeout and tick must "
                            + "be positive, got " + d);
                }
            }
        }
    }

    /**
     * Recycled one-off containers: once a one-off's run ended cleanly (verdict OK or RUNTIME_ERROR, nothing the engine
     * saw go wrong), its container is scrubbed by the agent (see {@link io.agentexec.sandbox.agent.Scrub}) and kept
     * for the next one-off of the same owner (the cluster's tenant), never another's unless {@code shareAcrossTenants}.
     * Any other ending, a failed scrub, or {@code maxUses} one-offs served retire (remove) it.
     *
     * @param maxIdlePerTenant recycled containers one owner may keep idle per image
     * @param keepZygote       spare a pre-initialised interpreter that the last scrub started and no block touched
     *                         (its forks share a str hash seed, as a session's blocks do); false: a new one per one-off
     * @param killWait         how long what a run left may take to die during a scrub
     * @param scrubTimeout     how long the controller waits for the scrub's answer
     */
    public record Recycle(boolean enabled, boolean shareAcrossTenants, int maxUses, int maxIdlePerTenant,
                          boolean keepZygote, Duration killWait, Duration scrubTimeout) {
        public Recycle {
            if (maxUses < 1) {
                throw new IllegalArgumentException("recycle.max-uses must be at least 1, got " + maxUses);
            }
            if (maxIdlePerTenant < 1) {
                throw new IllegalArgumentException("recycle.max-idle-per-tenant must be at least 1, got " + maxIdlePerTenant);
            }
            Objects.requireNonNull(killWait, "killWait");
            Objects.requireNonNull(scrubTimeout, "scrubTimeout");
            if (killWait.isNegative() || killWait.isZero() || scrubTimeout.compareTo(killWait) <= 0) {
                throw new IllegalArgumentException("recycle.kill-wait must be positive and recycle.scrub-timeout longer,"
                        + " got " + killWait + " and " + scrubTimeout);
            }
        }

        /** Off: every one-off's container is removed after it. */
        public static Recycle disabled() {
            return new Recycle(false, false, 1, 1, false, Duration.ofSeconds(2), Duration.ofSeconds(5));
        }
    }

    /**
     * A small health run in a real container of each runtime the engine may use, at engine start: a runtime that
     * cannot list {@code /proc} or start a handful of processes within {@code timeout} is reported and refused.
     * The bound is a health bound (a runtime that works takes a small fraction of it), not a speed requirement.
     *
     * @param image   the image the probe container runs (it needs {@code sh} and {@code ls})
     * @param spawns  processes the probe starts, one after the other
     * @param timeout how long those may take, the container's start not counted
     */
    public record RuntimeProbe(boolean enabled, String image, int spawns, Duration timeout) {
        public RuntimeProbe {
            Objects.requireNonNull(image, "image");
            Objects.requireNonNull(timeout, "timeout");
            if (spawns < 1) {
                throw new IllegalArgumentException("runtime-probe.spawns must be positive, got " + spawns);
            }
        }
    }

    /**
     * Removal of closed sessions' containers ({@code docker rm -f}, a large part of a one-off's cost) on a
     * bounded pool, so that closing a session does not wait for it. The session's agent is gone before
     * (its stdin closed, every process of the sandbox killed with it); only the stopped container waits.
     *
     * @param threads   removals at once
     * @param queue     removals waiting; past that the closing thread removes the container itself
     * @param closeWait how long closing the backend waits for pending removals before removing what is left itself
     * @param batch     removals done back to back before a pause of {@code interval}: the daemon's removal work is
     *                  spread out (at most {@code batch / interval} a second) so that it does not take the runs' CPU
     *                  in bursts; and none starts while a caller waits for a container to be made
     */
    public record Removal(int threads, int queue, Duration closeWait, int batch, Duration interval) {
        public Removal {
            if (threads < 1 || queue < 0) {
                throw new IllegalArgumentException("docker.removal needs threads >= 1 and queue >= 0, got "
                        + threads + " and " + queue);
            }
            Objects.requireNonNull(closeWait, "closeWait");
            if (batch < 1) {
                throw new IllegalArgumentException("docker.removal.batch must be at least 1, got " + batch);
            }
            Objects.requireNonNull(interval, "interval");
            if (interval.isNegative()) {
                throw new IllegalArgumentException("docker.removal.interval must not be negative, got " + interval);
            }
        }

        /** Unthrottled removals, as before batching. */
        public Removal(int threads, int queue, Duration closeWait) {
            this(threads, queue, closeWait, 1, Duration.ZERO);
        }
    }

    public DockerBackendSettings {
        Objects.requireNonNull(defaults, "defaults");
        try {
            SandboxUser.parse(defaults.user());
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("docker defaults: the user could run sandboxes as root: " + e.getMessage(), e);
        }
        warmImages = List.copyOf(warmImages);
        if (warmPoolSize < 0) {
            throw new IllegalArgumentException("warm-pool.size must not be negative");
        }
        Objects.requireNonNull(poolLimits, "poolLimits");
        Objects.requireNonNull(workspace, "workspace");
        Objects.requireNonNull(agentStartTimeout, "agentStartTimeout");
        allowedNetworks = Set.copyOf(allowedNetworks);
        allowedRuntimes = Set.copyOf(allowedRuntimes);
        runtimeHostPids = Map.copyOf(runtimeHostPids);
        runtimeHostPids.forEach((runtime, pids) -> {
            if (pids < 1) {
                throw new IllegalArgumentException("runtime-host-pids." + runtime + " must be positive");
            }
        });
        Objects.requireNonNull(removal, "removal");
        Objects.requireNonNull(runtimeProbe, "runtimeProbe");
        Objects.requireNonNull(pool, "pool");
        if (maxConcurrentCreates < 1) {
            throw new IllegalArgumentException("docker.max-concurrent-creates must be at least 1, got " + maxConcurrentCreates);
        }
        Objects.requireNonNull(recycle, "recycle");
    }

    /**
     * Whether a one-off's container with these options and limits may be recycled: recycling is on, the sandbox has
     * the default hardening (so a read-only root: only its tmpfs mounts are writable, and the scrub empties them all)
     * and the pool's workspace size, and its runtime shares the host's kernel (a runtime with its own, gVisor, cannot
     * have its limits reset in place).
     */
    public boolean recycles(Limits limits, SandboxOptions options) {
        return recycle.enabled() && options.equals(defaults) && defaults.readOnlyRootFilesystem()
                && limits.workspaceBytes() == poolLimits.workspaceBytes() && !hasOwnKernel(options.runtime());
    }

    /** The engine's rules on sandbox options: these defaults as the floor, the allowed networks and runtimes. */
    public OptionRules rules() {
        return new OptionRules(defaults, allowedNetworks, allowedRuntimes);
    }

    /** Every runtime a sandbox of this engine may use: the configured one (empty: the daemon's default) and the listed. */
    public List<Optional<String>> usableRuntimes() {
        return rules().usableRuntimes();
    }

    /**
     * The pids limit of the container's host cgroup: the user's limit, or for a runtime with its own kernel the
     * runtime's host limit (with only the user's limit there gVisor's sentry cannot start the host threads it runs
     * user processes on, and panics).
     */
    public long hostPidsLimit(int pids, Optional<String> runtime) {
        return runtime.map(runtimeHostPids::get).orElse(pids);
    }

    /** Whether the runtime gives the container a kernel of its own, which then counts the user's processes. */
    public boolean hasOwnKernel(Optional<String> runtime) {
        return runtime.map(runtimeHostPids::containsKey).orElse(false);
    }

    /** The same settings with another warm-pool size (0 for one-shot use such as the CLI). */
    public DockerBackendSettings withWarmPoolSize(int size) {
        return new DockerBackendSettings(defaults, warmImages, size, poolLimits, workspace, agentStartTimeout,
                allowedNetworks, allowedRuntimes, runtimeHostPids, removal, runtimeProbe, pool, maxConcurrentCreates,
                recycle);
    }

    /** The same settings with other recycling rules. */
    public DockerBackendSettings withRecycle(Recycle value) {
        return new DockerBackendSettings(defaults, warmImages, warmPoolSize, poolLimits, workspace, agentStartTimeout,
                allowedNetworks, allowedRuntimes, runtimeHostPids, removal, runtimeProbe, pool, maxConcurrentCreates,
                value);
    }

    /** The same settings with another way of following demand. */
    public DockerBackendSettings withPool(Pool value) {
        return new DockerBackendSettings(defaults, warmImages, warmPoolSize, poolLimits, workspace, agentStartTimeout,
                allowedNetworks, allowedRuntimes, runtimeHostPids, removal, runtimeProbe, value, maxConcurrentCreates,
                recycle);
    }
}
