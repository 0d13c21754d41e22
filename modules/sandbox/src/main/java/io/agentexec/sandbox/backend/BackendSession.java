package io.agentexec.sandbox.backend;

import io.agentexec.sandbox.agent.AgentChannel;
import io.agentexec.sandbox.agent.RunSpec;
import io.agentexec.sandbox.model.Limits;
import java.util.Optional;
import java.util.OptionalLong;

/** One live sandbox: a container or namespace with its agent, and a workspace that persists across runs. */
public interface BackendSession extends AutoCloseable {
    String id();

    AgentChannel channel();

    /** The workspace directory as the code inside sees it. */
    String workspace();

    /** Adjusts memory, CPU and pids limits between runs where the backend can; returns false when it cannot. */
    boolean applyLimits(Limits limits);

    /**
     * RLIMIT_NPROC for each run, where the pids cgroup alone cannot bound the user's processes. Empty by default:
     * on the host kernel RLIMIT_NPROC counts every process of the uid on the machine, not of this sandbox.
     */
    default OptionalLong runProcessLimit(Limits limits) {
        return OptionalLong.empty();
    }

    /**
     * After the sandbox died under a run: whether the kernel killed it for memory (the whole sandbox,
     * as happens under gVisor, where the sentry itself is charged for the program's memory).
     */
    default boolean diedOfOutOfMemory() {
        return false;
    }

    /**
     * A one-off is done with the sandbox. A backend that recycles sandboxes (Docker, for a one-off opened with an
     * owner) has it scrubbed and keeps it for the owner's next one-off when {@code clean} (its run ended as nothing the
     * engine saw went wrong); otherwise, and by default, the sandbox ends as with {@link #close}.
     *
     * @param prime the run whose pre-initialised interpreter the scrubbed sandbox starts for its next one-off
     * @return whether the sandbox was kept
     */
    default boolean recycle(boolean clean, Optional<RunSpec> prime) {
        close();
        return false;
    }

    /** Ends the sandbox and everything in it. Idempotent. */
    @Override
    void close();
}
