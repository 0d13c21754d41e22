package io.agentexec.sandbox.agent;

import java.util.List;
import java.util.Map;

/** One process for the agent to start: argv, its environment, stdin, and the limits it enforces itself. */
public record RunSpec(
        List<String> argv,
        Map<String, String> environment,
        String workingDirectory,
        byte[] stdin,
        long timeoutMillis,
        long stdoutLimitBytes,
        long stderrLimitBytes,
        long fileSizeLimitBytes) {

    public RunSpec {
        argv = List.copyOf(argv);
        environment = Map.copyOf(environment);
        stdin = stdin.clone();
    }
}
