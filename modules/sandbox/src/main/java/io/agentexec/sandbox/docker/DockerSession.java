package io.agentexec.sandbox.docker;

import io.agentexec.sandbox.agent.AgentChannel;
import io.agentexec.sandbox.backend.BackendSession;
import io.agentexec.sandbox.model.Limits;

/** One sandbox container, its attach stream and its agent. */
final class DockerSession implements BackendSession {
    private final DockerBackend backend;
    private final String id;
    private final String containerId;
    private final AttachStream attach;
    private final AgentChannel channel;
    private final String workspace;
    private Limits applied;
    private volatile boolean closed;

    DockerSession(DockerBackend backend, String id, String containerId, AttachStream attach, String workspace, Limits limits) {
        this.backend = backend;
        this.id = id;
        this.containerId = containerId;
        this.attach = attach;
        this.workspace = workspace;
        this.applied = limits;
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

    /** Memory, swap, CPU and pids change in place with {@code docker update}; the workspace size does not. */
    @Override
    public synchronized boolean applyLimits(Limits limits) {
        if (limits.memoryBytes() != applied.memoryBytes() || limits.cpus() != applied.cpus() || limits.pids() != applied.pids()) {
            backend.updateLimits(containerId, limits);
            applied = applied.withMemoryBytes(limits.memoryBytes()).withCpus(limits.cpus()).withPids(limits.pids());
        }
        return limits.workspaceBytes() == applied.workspaceBytes();
    }

    @Override
    public boolean diedOfOutOfMemory() {
        return backend.diedOfOutOfMemory(containerId);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        channel.close();
        attach.close();
        backend.remove(containerId);
        backend.forget(this);
    }

    void closeQuietly() {
        try {
            close();
        } catch (RuntimeException ignored) {
            // best effort during shutdown
        }
    }
}
