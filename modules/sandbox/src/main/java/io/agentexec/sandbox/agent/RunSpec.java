package io.agentexec.sandbox.agent;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * One process for the agent to start: argv, its environment, stdin, and the limits it enforces itself.
 *
 * @param processLimit RLIMIT_NPROC for the run, or empty where the backend bounds processes by a cgroup
 * @param zygote       run it in a fork of a pre-initialised interpreter where the agent can (see agentexec-agent.c)
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
        OptionalLong processLimit,
        Optional<Zygote> zygote) {

    public RunSpec {
        argv = List.copyOf(argv);
        environment = Map.copyOf(environment);
        stdin = stdin.clone();
        Objects.requireNonNull(zygote, "zygote");
        if (zygote.isPresent() && (zygote.get().interpreterArguments() < 1 || zygote.get().interpreterArguments() >= argv.size())) {
            throw new IllegalArgumentException("zygote: the interpreter's " + zygote.get().interpreterArguments()
                    + " argument(s) must be followed by the script in argv " + argv);
        }
    }

    /** A plain start. */
    public RunSpec(List<String> argv, Map<String, String> environment, String workingDirectory, byte[] stdin,
                   long timeoutMillis, long stdoutLimitBytes, long stderrLimitBytes, long fileSizeLimitBytes,
                   OptionalLong processLimit) {
        this(argv, environment, workingDirectory, stdin, timeoutMillis, stdoutLimitBytes, stderrLimitBytes,
                fileSizeLimitBytes, processLimit, Optional.empty());
    }

    /**
     * The zygote to run the process in: argv's first {@code interpreterArguments} entries are the interpreter
     * command, which the agent starts with {@code startArguments} in place of the rest, sends {@code bootstrap} to,
     * and forks the process from.
     *
     * @param forksPerZygote 0 for no limit
     * @param prepare        start a zygote after this run if there is none; false for a session's last run (the
     *                       zygote would only die with it)
     */
    public record Zygote(
            int interpreterArguments,
            List<String> startArguments,
            byte[] bootstrap,
            Duration startTimeout,
            Duration forkTimeout,
            int forksPerZygote,
            int maxRestarts,
            boolean prepare) {

        public Zygote {
            startArguments = List.copyOf(startArguments);
            bootstrap = bootstrap.clone();
            Objects.requireNonNull(startTimeout, "startTimeout");
            Objects.requireNonNull(forkTimeout, "forkTimeout");
        }
    }
}
