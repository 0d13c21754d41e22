package io.agentexec.sandbox.docker;

import io.agentexec.sandbox.agent.AgentChannel;
import io.agentexec.sandbox.backend.BackendSession;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import java.util.Optional;
import java.util.OptionalLong;

/** One sandbox container, its attach stream and its agent. */
final class DockerSession implements BackendSession {
    private final ContainerLauncher launcher;
    private final String id;
    private final String containerId;
    private final AttachStream attach;
    private final AgentChannel channel;
    private final String workspace;
    private final Optional<String> runtime;
    private Limits applied;
    private volatile boolean closed;

    DockerSession(ContainerLauncher launcher, String id, String containerId, AttachStream attach, String workspace, Limits limits,
            Optional<String> runtime) {
        this.launcher = launcher;
        this.id = id;
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
