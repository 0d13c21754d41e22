package io.agentexec.sandbox.model;

/** How a run ended, judged by the engine rather than guessed from the exit code. */
public enum Verdict {
    /** Every block exited 0 within its limits. */
    OK,
    /** A block exited non-zero or died of a signal that the engine did not send. */
    RUNTIME_ERROR,
    /** The wall-clock limit passed; the whole process tree was killed. */
    TIMEOUT,
    /** The kernel's OOM killer acted inside the sandbox's memory cgroup. */
    MEMORY_LIMIT,
    /** A stream went over its byte cap; the output was cut at the cap and the run killed. */
    OUTPUT_LIMIT,
    /** The caller cancelled the run (for example, its client disconnected); every process was killed. */
    CANCELLED,
    /** The request was refused before anything ran (unsafe file name, forbidden pattern, ...). */
    POLICY_VIOLATION,
    /** The sandbox itself failed (daemon unreachable, container vanished). Infrastructure, not user code. */
    SANDBOX_ERROR
}
