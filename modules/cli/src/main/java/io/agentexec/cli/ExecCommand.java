package io.agentexec.cli;

import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.SandboxSession;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.options.RunArgs;
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

/**
 * {@code agentexec exec}: runs one file (or stdin) through the engine and prints the result.
 * Parsed by hand: a handful of flags does not justify a dependency.
 */
final class ExecCommand {
    static final String USAGE = "usage: agentexec exec --language LANG [--timeout SECONDS] [--memory SIZE] [--cpus N] "
            + "[--pids N] [--output-bytes N] [--backend auto|docker|bwrap|unsafe-local] [--image IMAGE] "
            + "[--stdin FILE] [--docker-run-arg ARG]... FILE|-";

    record Options(String language, Limits limits, BackendChoice backend, Optional<String> image,
                   Optional<Path> stdinFile, List<String> dockerRunArgs, String source) {
    }

    static Options parse(List<String> args, Limits defaults) {
        String language = null;
        Limits limits = defaults;
        BackendChoice backend = null;
        Optional<String> image = Optional.empty();
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
        return new Options(language, limits, backend == null ? BackendChoice.AUTO : backend, image, stdinFile, dockerArgs, source);
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

    /** Runs the command; returns the result, or throws UsageException for input that cannot run. */
    static ExecutionResult run(Options options, EngineSettings base, InputStream stdin) throws IOException {
        String code = read(options.source(), stdin);
        byte[] input = options.stdinFile().isPresent() ? readFile(options.stdinFile().get()) : new byte[0];
        // One block, then the engine goes: a warm pool would only cost container starts here.
        EngineSettings settings = base.withBackend(options.backend()).withWarmPoolSize(0);
        try (SandboxEngine engine = SandboxEngine.start(settings)) {
            RunArgs.Applied applied = RunArgs.apply(options.dockerRunArgs(), options.limits(), settings.optionRules());
            ExecutionRequest request = ExecutionRequest.builder(applied.limits())
                    .block(options.language(), code)
                    .stdin(input)
                    .build();
            String image = options.image().orElseGet(() -> engine.imageFor(options.language()));
            try (SandboxSession session = engine.openSession(image, applied.limits(), applied.options())) {
                return session.executeLast(request, OutputListener.NONE); // the only request: no zygote after it
            }
        } catch (InvalidRequestException e) {
            throw new UsageException(e.getMessage());
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
