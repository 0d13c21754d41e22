package io.agentexec.sandbox.agent;

import java.util.List;

/** What the agent reported for one process: its status, its capped output, and the files it changed. */
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
        List<ChangedFile> changedFiles) {

    public record ChangedFile(String path, long size) {
    }
}
