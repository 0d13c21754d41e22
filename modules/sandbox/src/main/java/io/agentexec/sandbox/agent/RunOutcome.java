package io.agentexec.sandbox.agent;

import java.util.List;

/**
 * What the agent reported for one process: its status, its capped output, and the files it changed.
 *
 * @param zygote    whether it ran in a fork of a pre-initialised interpreter (else it was a plain start)
 * @param startNote when a zygote was asked for and the process did not run in one, why (empty otherwise)
 */
public record RunOutcome(
        int exitCode,
        int signal,
        boolean timedOut,
        boolean stdoutTruncated,
        boolean stderrTruncated,
        boolean outputLimitHit,
        boolean oomKilled,
        boolean spawnFailed,
        boolean cancelled,
        int spawnErrno,
        long wallMicros,
        long maxRssBytes,
        byte[] stdout,
        byte[] stderr,
        byte[] combined,
        List<ChangedFile> changedFiles,
        boolean zygote,
        String startNote) {

    public record ChangedFile(String path, long size) {
    }
}
