package io.agentexec.sandbox.backend;

/** A way to make sandboxes: Docker containers, bubblewrap namespaces, or (unsafe) plain processes. */
public interface SandboxBackend extends AutoCloseable {
    /** {@code docker}, {@code bwrap} or {@code unsafe-local}. */
    String name();

    /** Creates (or takes from a warm pool) a sandbox whose agent has greeted. */
    BackendSession open(SessionSpec spec);

    /** Removes every sandbox this backend made. */
    @Override
    void close();
}
