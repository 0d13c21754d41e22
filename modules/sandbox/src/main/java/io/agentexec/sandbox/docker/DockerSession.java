package io.agentexec.sandbox.docker;

import io.agentexec.sandbox.agent.AgentChannel;
import io.agentexec.sandbox.agent.RunSpec;
import io.agentexec.sandbox.agent.Scrub;
import io.agentexec.sandbox.backend.BackendSession;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import java.time.Duration;
import java.util.Optional;
import java.util.OptionalLong;

/** One sandbox container, its attach stream and its agent. */
final class DockerSession implements BackendSession {
    /** Takes a one-off's container back: scrubs it and keeps it for its owner, or retires it; true when kept. */
    @FunctionalInterface
    interface Recycler {
        boolean recycle(DockerSession session, Optional<RunSpec> prime);
    }

    private final ContainerLauncher launcher;
    private final String id;
    private final String image;
    private final String containerId;
    private final AttachStream attach;
    private final AgentChannel channel;
    private final String workspace;
    private final Optional<String> runtime;
    private Limits applied;
    private volatile boolean closed;
    /** Set while a one-off that may give the container back holds it; guarded by this. */
    private Recycler recycler;
    private Optional<String> owner = Optional.empty();
    /** One-offs and sessions served, this one included; guarded by this. */
    private int uses;
    private long takenNanos;

    DockerSession(ContainerLauncher launcher, String id, String image, String containerId, AttachStream attach,
                  String workspace, Limits limits, Optional<String> runtime) {
        this.launcher = launcher;
        this.id = id;
        this.image = image;
        this.containerId = containerId;
        this.attach = attach;
        this.workspace = workspace;
        this.applied = limits;
        this.runtime = runtime;
        this.channel = new AgentChannel(attach.stdin());
    }

    @Override
    public String id() {
        return id;
    }

    String containerId() {
        return containerId;
    }

    String image() {
        return image;
    }

    /**
     * The container is handed out (to a session, or to a one-off that may give it back to {@code recycler} for
     * {@code owner}; null: it is closed when done).
     */
    synchronized void handedOut(Recycler recycler, Optional<String> owner) {
        this.recycler = recycler;
        this.owner = owner;
        this.uses++;
        this.takenNanos = System.nanoTime();
    }

    /** Who the container's one-offs ran for: it is kept for them only. */
    synchronized Optional<String> owner() {
        return owner;
    }

    synchronized int uses() {
        return uses;
    }

    /** When it was last handed out ({@link System#nanoTime}). */
    synchronized long takenNanos() {
        return takenNanos;
    }

    /**
     * A one-off is done with it: given to the recycler when it ran cleanly and one is set, closed otherwise.
     */
    @Override
    public boolean recycle(boolean clean, Optional<RunSpec> prime) {
        Recycler r;
        synchronized (this) {
            r = recycler;
            recycler = null;
        }
        if (r == null || !clean || closed || !channel.isOpen()) {
            close();
            return false;
        }
        return r.recycle(this, prime);
    }

    /** Has the agent reset the sandbox (see {@link Scrub}); throws when it could not, or did not answer. */
    void scrub(Scrub scrub, Duration timeout) {
        channel.scrub(scrub, timeout);
    }

    boolean isClosed() {
        return closed || !channel.isOpen();
    }

    @Override
    public AgentChannel channel() {
        return channel;
    }

    @Override
    public String workspace() {
        return workspace;
    }

    /**
     * Memory, swap, CPU and pids change in place with {@code docker update}; the workspace size does not. Under a
     * runtime with its own kernel (gVisor cannot be updated) the pids limit is applied per run, inside, and memory
     * and CPU stay what the sandbox was created with: a run asking for others is refused.
     */
    @Override
    public synchronized boolean applyLimits(Limits limits) {
        boolean resourcesChange = limits.memoryBytes() != applied.memoryBytes() || limits.cpus() != applied.cpus();
        if (launcher.hasOwnKernel(runtime)) {
            if (resourcesChange) {
                throw new InvalidRequestException("the " + runtime.orElseThrow() + " runtime cannot change a live "
                        + "sandbox's memory or CPU limit (it has " + applied.memoryBytes() + " bytes and " + applied.cpus()
                        + " CPUs; this run asks " + limits.memoryBytes() + " and " + limits.cpus()
                        + "): open a sandbox with these limits instead");
            }
            applied = applied.withPids(limits.pids());
        } else if (resourcesChange || limits.pids() != applied.pids()) {
            launcher.updateLimits(containerId, limits, runtime);
            applied = applied.withMemoryBytes(limits.memoryBytes()).withCpus(limits.cpus()).withPids(limits.pids());
        }
        return limits.workspaceBytes() == applied.workspaceBytes();
    }

    /**
     * Under a runtime with its own kernel (gVisor) the host pids cgroup also holds the runtime's threads, so it
     * gets headroom and the user's processes are bounded inside instead, where the sandbox's kernel counts them.
     */
    @Override
    public OptionalLong runProcessLimit(Limits limits) {
        return launcher.hasOwnKernel(runtime) ? OptionalLong.of(limits.pids()) : OptionalLong.empty();
    }

    @Override
    public boolean diedOfOutOfMemory() {
        return launcher.diedOfOutOfMemory(containerId);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        // EOF on the agent's stdin ends it, and with it (pid 1) every process of the sandbox, at once;
        // the stopped container is removed in the background (the closer does not wait for docker rm).
        channel.close();
        attach.close();
        launcher.closed(this);
    }

    void closeQuietly() {
        try {
            close();
        } catch (RuntimeException ignored) {
            // best effort during shutdown
        }
    }
}
