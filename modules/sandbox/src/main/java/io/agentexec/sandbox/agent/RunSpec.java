package io.agentexec.sandbox.agent;

import java.util.List;
import java.util.Map;
import java.util.OptionalLong;

/**
 * One process for the agent to start: argv, its environment, stdin, and the limits it enforces itself.
 *
 * @param processLimit RLIMIT_NPROC for the run, or empty where the backend bounds processes by a cgroup
 */
public record RunSpec(
        List<String> argv,
        Map<String, String> environment,
        String workingDirectory,
        byte[] stdin,
        long timeoutMillis,
        long stdoutLimitBytes,
        long stderrLimitBytes,
        long fileSizeLimitBytes,
        OptionalLong processLimit) {

    public RunSpec {
        argv = List.copyOf(argv);
        environment = Map.copyOf(environment);
        stdin = stdin.clone();
    }
}
