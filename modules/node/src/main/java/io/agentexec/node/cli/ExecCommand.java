package io.agentexec.node.cli;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.executors.CodePolicy;
import io.agentexec.cluster.executors.ExecutorOptions;
import io.agentexec.cluster.executors.ExecutorOutcome;
import io.agentexec.cluster.executors.ExecutorProfiles;
import io.agentexec.cluster.executors.SeedExecutors;
import io.agentexec.cluster.executors.TestSuite;
import io.agentexec.cluster.port.Caller;
import io.agentexec.cluster.port.EnginePort;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.language.Language;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.options.RunArgs;
import io.agentexec.sandbox.policy.ExecutionPolicy;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;

/**
 * {@code agentexec exec} (without {@code --server}): runs one file (or stdin) here, through the execution port's
 * engine adapter ({@link EnginePort}), and prints the result. Parsed by hand: a handful of flags does not justify a
 * dependency.
 */
final class ExecCommand {
    /** One run, nothing waiting: the command runs one request and goes. */
    private static final int SLOTS = 1;
    private static final int QUEUE = 0;
    /** With the seed's executors: the next attempt or test case waits for the previous one's slot. */
    private static final int EXECUTORS_QUEUE = 1;
    /** The sandbox and run of a command are its own: nothing else uses this port. */
    private static final String SANDBOX_ID = "cli";
    private static final String EXECUTION_ID = "cli-run";
    /**
     * What a sandbox for a language the table does not know is labelled (the engine gives it python's image): the
     * code still runs there and gets AG2's {@code unknown language X} answer, as it always did.
     */
    private static final String UNKNOWN_LANGUAGE_LABEL = "python";

    static final String USAGE = "usage: agentexec exec --language LANG [--timeout SECONDS] [--memory SIZE] [--cpus N] "
            + "[--pids N] [--output-bytes N] [--backend auto|docker|bwrap|unsafe-local] [--image IMAGE] "
            + "[--stdin FILE] [--docker-run-arg ARG]... [--profile P] [--policy secure | --forbid PATTERN...] "
            + "[--retries N] [--cache] [--test STDIN=EXPECTED]... [--config FILE] FILE|-";

    /**
     * @param executors the seed's executors asked for ({@code --profile}, {@code --policy}/{@code --forbid},
     *                  {@code --retries}, {@code --cache}, {@code --test}); empty: a plain run
     * @param notes     what the profile asked above the operator's ceilings (agentexec.policy), held there
     */
    record Options(String language, Limits limits, BackendChoice backend, Optional<String> image,
                   Optional<Path> stdinFile, List<String> dockerRunArgs, String source, ExecutorOptions executors,
                   List<String> notes) {
        /** Whether the run needs the seed's executors around it. */
        boolean needsExecutors() {
            return executors.policy().isPresent() || executors.retries().isPresent() || executors.caching()
                    || executors.tests().isPresent() || !notes.isEmpty();
        }
    }

    /** What a run made here went to: the engine's result, and what the seed's executors add when asked for. */
    record Ran(ExecutionResult result, Optional<ExecutorOutcome> executors) {
    }

    static Options parse(List<String> args, Limits defaults) {
        return parse(args, defaults, SeedExecutors.local(com.typesafe.config.ConfigFactory.load()),
                ExecutionPolicy.fromConfig(com.typesafe.config.ConfigFactory.load()));
    }

    /**
     * Parses the command line; {@code --profile} is applied first (the other limit flags override it) and held under
     * {@code ceilings}, the operator's policy, as on a node.
     */
    static Options parse(List<String> args, Limits defaults, SeedExecutors seed, ExecutionPolicy ceilings) {
        String language = null;
        Limits limits = defaults;
        ExecutorOptions executors = ExecutorOptions.none();
        List<String> notes = new ArrayList<>();
        Optional<String> image = Optional.empty();
        int p = args.indexOf("--profile");
        if (p >= 0) {
            String name = value(args, p + 1, "--profile");
            args.remove(p + 1);
            args.remove(p);
            try {
                ExecutorProfiles.Applied applied = seed.applyProfile(name, limits, ceilings);
                limits = applied.limits();
                image = applied.image();
                notes.addAll(applied.notes());
                executors = executors.withProfile(name);
            } catch (IllegalArgumentException e) {
                throw new UsageException("--profile: " + e.getMessage());
            }
        }
        List<String> forbidden = new ArrayList<>();
        List<TestSuite.IoCase> tests = new ArrayList<>();
        BackendChoice backend = null;
        Optional<Path> stdinFile = Optional.empty();
        List<String> dockerArgs = new ArrayList<>();
        String source = null;
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            try {
                switch (a) {
                    case "--language", "-l" -> language = value(args, ++i, a);
                    case "--timeout" -> limits = limits.withTimeout(seconds(value(args, ++i, a)));
                    case "--memory" -> limits = limits.withMemoryBytes(Limits.parseBytes(value(args, ++i, a)));
                    case "--cpus" -> limits = limits.withCpus(number(value(args, ++i, a), a));
                    case "--pids" -> limits = limits.withPids((int) number(value(args, ++i, a), a));
                    case "--output-bytes" -> limits = limits.withOutputBytesPerStream(Limits.parseBytes(value(args, ++i, a)));
                    case "--backend" -> backend = BackendChoice.parse(value(args, ++i, a));
                    case "--image" -> image = Optional.of(value(args, ++i, a));
                    case "--stdin" -> stdinFile = Optional.of(Path.of(value(args, ++i, a)));
                    case "--docker-run-arg" -> dockerArgs.add(value(args, ++i, a));
                    case "--policy" -> executors = executors.withPolicy(seed.policy(value(args, ++i, a)));
                    case "--forbid" -> forbidden.add(value(args, ++i, a));
                    case "--retries" -> {
                        int n = (int) number(value(args, ++i, a), a);
                        if (n < 1 || n > seed.settings().maxRetries()) {
                            throw new UsageException("--retries: 1 to " + seed.settings().maxRetries()
                                    + " attempts (agentexec.executors.max-retries); got " + n);
                        }
                        executors = executors.withRetries(n);
                    }
                    case "--cache" -> executors = executors.withCache(true);
                    case "--executor" -> executors = executors.withExecutor(value(args, ++i, a));
                    case "--test" -> {
                        String t = value(args, ++i, a);
                        int eq = t.indexOf('=');
                        if (eq < 0) {
                            throw new UsageException("--test needs STDIN=EXPECTED, got '" + t + "'");
                        }
                        tests.add(new TestSuite.IoCase(t.substring(0, eq).replace("\\n", "\n"),
                                t.substring(eq + 1).replace("\\n", "\n")));
                    }
                    default -> {
                        if (a.startsWith("-") && !a.equals("-")) {
                            throw new UsageException("unknown option " + a);
                        }
                        if (source != null) {
                            throw new UsageException("only one FILE may be given (got " + source + " and " + a + ")");
                        }
                        source = a;
                    }
                }
            } catch (IllegalArgumentException e) {
                // covers InvalidRequestException: a limit out of range, an unknown backend
                throw new UsageException(a + ": " + e.getMessage());
            }
        }
        if (language == null) {
            throw new UsageException("--language is required");
        }
        if (source == null) {
            throw new UsageException("a FILE to run, or - for stdin, is required");
        }
        if (!forbidden.isEmpty()) {
            if (executors.policy().isPresent()) {
                throw new UsageException("give --policy NAME or --forbid PATTERN, not both");
            }
            executors = executors.withPolicy(CodePolicy.patterns(forbidden));
        }
        if (!tests.isEmpty()) {
            if (tests.size() > seed.settings().maxTests()) {
                throw new UsageException("--test: at most " + seed.settings().maxTests() + " cases; got " + tests.size());
            }
            executors = executors.withTests(new TestSuite.IoCases(tests));
        }
        return new Options(language, limits, backend == null ? BackendChoice.AUTO : backend, image, stdinFile, dockerArgs,
                source, executors, notes);
    }

    private static String value(List<String> args, int i, String flag) {
        if (i >= args.size()) {
            throw new UsageException(flag + " needs a value");
        }
        return args.get(i);
    }

    private static Duration seconds(String text) {
        double s = number(text, "--timeout");
        return Duration.ofMillis(Math.round(s * 1000));
    }

    private static double number(String text, String flag) {
        try {
            double v = Double.parseDouble(text);
            if (Double.isNaN(v) || Double.isInfinite(v)) {
                throw new NumberFormatException();
            }
            return v;
        } catch (NumberFormatException e) {
            throw new UsageException(flag + " needs a number, got '" + text + "'");
        }
    }

    /**
     * Runs the command: a sandbox made with the command line's image, limits and {@code --docker-run-arg}s (a one-off
     * run would take the engine's default options), one run in it, then it goes. Returns the result; throws
     * UsageException for input that cannot run, SandboxUnavailableException when no sandbox could be made.
     */
    static ExecutionResult run(Options options, EngineSettings base, InputStream stdin) throws IOException {
        return run(options, base, stdin, SeedExecutors.local(com.typesafe.config.ConfigFactory.load())).result();
    }

    /**
     * As {@link #run(Options, EngineSettings, InputStream)}; with executor options, the seed's executors (this JVM's
     * cache and statistics: {@code seed}) make each attempt and test case a run in the command's sandbox.
     */
    static Ran run(Options options, EngineSettings base, InputStream stdin, SeedExecutors seed) throws IOException {
        String code = read(options.source(), stdin);
        byte[] input = options.stdinFile().isPresent() ? readFile(options.stdinFile().get()) : new byte[0];
        // One block, then the engine goes: a warm pool would only cost container starts here.
        EngineSettings settings = base.withBackend(options.backend()).withWarmPoolSize(0);
        RunArgs.Applied applied;
        ExecutionRequest request;
        try {
            applied = RunArgs.apply(options.dockerRunArgs(), options.limits(), settings.optionRules());
            request = ExecutionRequest.builder(applied.limits())
                    .block(options.language(), code)
                    .stdin(input)
                    .build();
        } catch (InvalidRequestException e) {
            throw new UsageException(e.getMessage());
        }
        // the seed's executors run attempts and test cases one after the other: the next may be asked for a moment before
        // the previous one's slot is free, so it waits in a queue of one
        try (EnginePort port = new EnginePort(SandboxEngine.start(settings), SLOTS,
                options.needsExecutors() ? EXECUTORS_QUEUE : QUEUE)) {
            SandboxEngine engine = port.engine();
            String image = options.image().orElseGet(() -> engine.imageFor(options.language()));
            String label = engine.language(options.language()).map(Language::name).orElse(UNKNOWN_LANGUAGE_LABEL);
            // The person at this terminal is this machine's operator: the image and limits they ask for are theirs to
            // run (the operator's policy binds a node's tenants, not its own command line).
            Caller operator = Caller.node(new ExecutionPolicy(applied.limits(), Set.of(image)));
            await(port.createSandbox(operator, SANDBOX_ID,
                    new SandboxSpec(label, applied.limits(), Optional.of(image), Optional.of(applied.options()))));
            try {
                if (options.needsExecutors()) {
                    SeedExecutors.Runner runner = new SeedExecutors.Runner() {
                        @Override
                        public String executionId(int sequence) {
                            return EXECUTION_ID + "-" + sequence;
                        }

                        @Override
                        public CompletionStage<ExecutionOutcome> run(int sequence, String id, ExecutionRequest r) {
                            return port.start(operator, id, Optional.of(SANDBOX_ID), r, OutputListener.NONE).outcome();
                        }
                    };
                    ExecutorOutcome o = await(seed.run(new SeedExecutors.Call(operator, EXECUTION_ID, request,
                            options.executors(), "cli:" + image, "cli", options.notes()), runner));
                    return new Ran(result(o.outcome()), Optional.of(o));
                }
                ExecutionOutcome reply = await(port.start(operator, EXECUTION_ID, Optional.of(SANDBOX_ID), request,
                        OutputListener.NONE).outcome());
                return new Ran(result(reply), Optional.empty());
            } finally {
                await(port.deleteSandbox(operator, SANDBOX_ID));
            }
        } catch (InvalidRequestException e) {
            throw new UsageException(e.getMessage());
        }
    }

    /** The run's result; what else the port answers says why nothing (or not all of it) ran. */
    private static ExecutionResult result(ExecutionOutcome reply) {
        if (reply instanceof ExecutionOutcome.Completed completed) {
            return completed.result();
        }
        if (reply instanceof ExecutionOutcome.Rejected rejected) {
            throw new UsageException(rejected.reason());
        }
        if (reply instanceof ExecutionOutcome.SandboxLost lost) {
            throw new SandboxUnavailableException(lost.reason());
        }
        if (reply instanceof ExecutionOutcome.Overloaded overloaded) {
            throw new SandboxUnavailableException(overloaded.reason());
        }
        throw new IllegalStateException("the command's own sandbox was not found: " + reply);
    }

    /** The stage's value; its failure as thrown (the port's futures fail with the engine's own exceptions). */
    private static <T> T await(CompletionStage<T> stage) {
        try {
            return stage.toCompletableFuture().join();
        } catch (CompletionException e) {
            if (e.getCause() instanceof RuntimeException cause) {
                throw cause;
            }
            throw e;
        }
    }

    private static String read(String source, InputStream stdin) throws IOException {
        if (source.equals("-")) {
            return new String(stdin.readAllBytes(), StandardCharsets.UTF_8);
        }
        return new String(readFile(Path.of(source)), StandardCharsets.UTF_8);
    }

    private static byte[] readFile(Path path) throws IOException {
        try {
            return Files.readAllBytes(path);
        } catch (NoSuchFileException e) {
            throw new UsageException("no such file: " + path);
        }
    }
}
