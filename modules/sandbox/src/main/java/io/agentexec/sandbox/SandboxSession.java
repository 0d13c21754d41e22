package io.agentexec.sandbox;

import io.agentexec.sandbox.agent.AgentException;
import io.agentexec.sandbox.agent.AgentRefusal;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.agent.RunOutcome;
import io.agentexec.sandbox.agent.RunSpec;
import io.agentexec.sandbox.backend.BackendSession;
import io.agentexec.sandbox.blocks.FilenameDirective;
import io.agentexec.sandbox.language.Language;
import io.agentexec.sandbox.language.Zygote;
import io.agentexec.sandbox.model.BlockOutcome;
import io.agentexec.sandbox.model.CodeBlock;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.FileWritten;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import io.agentexec.sandbox.model.WorkspaceFile;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A sandbox whose workspace persists across requests: AG2's per-agent working directory. Requests
 * run one at a time, each block after the previous one succeeded, as AG2 does.
 */
public final class SandboxSession implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(SandboxSession.class);
    private static final Duration FILE_TIMEOUT = Duration.ofSeconds(30);
    private static final int EXIT_TIMEOUT = 124;
    /** What tar may say on stderr when it packs or unpacks a workspace: enough for its error lines. */
    private static final long ARCHIVE_ERROR_BYTES = 16 * 1024;
    /** Marks agentexec's own line in a reply, so neither the model nor a person takes it for the program's output. */
    static final String WORDS_PREFIX = "[agentexec] ";
    /** The backend whose agent is not alone in a pid namespace: no zygotes there (the agent would refuse them). */
    private static final String UNCONTAINED_BACKEND = "unsafe-local";
    /** Bootstrap sources, read once per JVM. */
    private static final Map<Zygote, byte[]> bootstraps = new ConcurrentHashMap<>();

    private final BackendSession backend;
    private final String backendName;
    private final EngineSettings settings;
    private final CodeValidator validator;
    private volatile boolean broken;
    private volatile boolean running;

    SandboxSession(BackendSession backend, String backendName, EngineSettings settings) {
        this.backend = backend;
        this.backendName = backendName;
        this.settings = settings;
        this.validator = new CodeValidator(settings.forbiddenPatterns());
    }

    /**
     * The same sandbox, its blocks run under other settings: the zygote probe's plain starts beside its forks
     * ({@link ZygoteProbe}). Either closes the sandbox.
     */
    SandboxSession withSettings(EngineSettings other) {
        return new SandboxSession(backend, backendName, other);
    }

    public String id() {
        return backend.id();
    }

    public String backend() {
        return backendName;
    }

    /**
     * False once the sandbox failed (its agent or container is gone, or it did not answer a request in time);
     * such a session should be closed.
     */
    public boolean isUsable() {
        return !broken && backend.channel().isOpen();
    }

    public ExecutionResult execute(ExecutionRequest request) {
        return execute(request, OutputListener.NONE);
    }

    public synchronized ExecutionResult execute(ExecutionRequest request, OutputListener listener) {
        return execute(request, listener, false);
    }

    /**
     * Runs a request that is the session's last (a one-off's): the same, but no pre-initialised interpreter is
     * started after its last block, where it would only die with the session.
     */
    public synchronized ExecutionResult executeLast(ExecutionRequest request, OutputListener listener) {
        return execute(request, listener, true);
    }

    private ExecutionResult execute(ExecutionRequest request, OutputListener listener, boolean last) {
        if (!isUsable()) {
            return ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, "sandbox " + id() + " is no longer usable", backendName);
        }
        try {
            backend.applyLimits(request.limits());
            for (WorkspaceFile file : request.files()) {
                Optional<String> problem = FilenameDirective.check(file.path());
                if (problem.isPresent()) {
                    return ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1, problem.get(), backendName);
                }
                backend.channel().writeFile(file.path(), file.content(), 0644, FILE_TIMEOUT);
            }
            return runBlocks(request, listener, last);
        } catch (AgentRefusal | InvalidRequestException e) {
            return ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1, e.getMessage(), backendName);
        } catch (AgentException | io.agentexec.sandbox.backend.SandboxUnavailableException e) {
            broken = true;
            if (backend.diedOfOutOfMemory()) {
                // The whole sandbox was OOM-killed (gVisor charges the program's memory to its sentry):
                // the user's code went over its limit; its output died with the sandbox.
                return ExecutionResult.refused(Verdict.MEMORY_LIMIT, 137, "the sandbox was killed by the kernel for "
                        + "exceeding " + request.limits().memoryBytes() + " bytes of memory; its output is lost", backendName);
            }
            return ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, "sandbox failed: " + e.getMessage(), backendName);
        } catch (RuntimeException e) {
            // docker-java reports a vanished container as a runtime exception of its own
            broken = true;
            return ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, "sandbox failed: " + e, backendName);
        }
    }

    private ExecutionResult runBlocks(ExecutionRequest request, OutputListener listener, boolean last) {
        ByteArrayOutputStream stdout = new ByteArrayOutputStream();
        ByteArrayOutputStream stderr = new ByteArrayOutputStream();
        ByteArrayOutputStream output = new ByteArrayOutputStream();
        List<FileWritten> written = new ArrayList<>();
        List<BlockOutcome> outcomes = new ArrayList<>();
        boolean stdoutTruncated = false;
        boolean stderrTruncated = false;
        long wallMicros = 0;
        long peak = -1;
        int exitCode = 0;
        OptionalInt signal = OptionalInt.empty();
        Verdict verdict = Verdict.OK;
        String message = "";
        String words = "";

        for (int i = 0; i < request.blocks().size(); i++) {
            CodeBlock block = request.blocks().get(i);
            String tag = block.language().isBlank() ? inferLanguage(block.code()) : block.language();
            Optional<Language> language = settings.languages().find(tag);
            if (language.isEmpty()) {
                // AG2's answer for a block it cannot run: exit code 1 and this exact text
                String text = "unknown language " + tag;
                output.writeBytes(text.getBytes(StandardCharsets.UTF_8));
                stderr.writeBytes(text.getBytes(StandardCharsets.UTF_8));
                outcomes.add(new BlockOutcome(i, tag, Verdict.RUNTIME_ERROR, 1, 0, BlockOutcome.NONE));
                exitCode = 1;
                verdict = Verdict.RUNTIME_ERROR;
                message = text;
                break;
            }
            Optional<String> violation = validator.firstViolation(block.code());
            if (violation.isPresent()) {
                return ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1,
                        "Potentially unsafe code detected: " + violation.get(), backendName);
            }
            Optional<String> named = FilenameDirective.find(block.code());
            if (named.isPresent()) {
                Optional<String> problem = FilenameDirective.check(named.get());
                if (problem.isPresent()) {
                    return ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1, problem.get(), backendName);
                }
            }
            String fileName = named.orElseGet(() -> "tmp_code_" + md5(block.code()) + "." + language.get().extension());
            Map<String, String> env = environment(settings, language.get(), request.environment());
            long remainingOut = Math.max(0, request.limits().outputBytesPerStream() - stdout.size());
            long remainingErr = Math.max(0, request.limits().outputBytesPerStream() - stderr.size());
            RunSpec spec = new RunSpec(language.get().commandFor(fileName), env, backend.workspace(), request.stdin(),
                    request.limits().timeout().toMillis(), remainingOut, remainingErr, request.limits().workspaceBytes(),
                    backend.runProcessLimit(request.limits()),
                    zygoteFor(settings, backendName, language.get(), request.limits(),
                            !(last && i == request.blocks().size() - 1)));
            RunOutcome run;
            running = true;
            try {
                // The block's file leaves with its run: one round trip to the agent per block.
                run = backend.channel().writeAndRun(fileName, block.code().getBytes(StandardCharsets.UTF_8), 0644,
                        FILE_TIMEOUT, spec, listener, backstop());
            } finally {
                running = false;
            }

            stdout.writeBytes(run.stdout());
            stderr.writeBytes(run.stderr());
            output.writeBytes(run.combined());
            stdoutTruncated |= run.stdoutTruncated();
            stderrTruncated |= run.stderrTruncated();
            wallMicros += run.wallMicros();
            if (run.maxRssBytes() > 0) {
                peak = Math.max(peak, run.maxRssBytes());
            }
            run.changedFiles().stream()
                    .filter(f -> !f.path().equals(fileName))
                    .forEach(f -> written.add(new FileWritten(f.path(), f.size())));

            Verdict blockVerdict = judge(run);
            exitCode = blockVerdict == Verdict.TIMEOUT ? EXIT_TIMEOUT : run.exitCode();
            signal = run.signal() == 0 ? OptionalInt.empty() : OptionalInt.of(run.signal());
            if (!run.startNote().isEmpty()) {
                log.debug("sandbox {} block {}: {}", id(), i, run.startNote());
            }
            outcomes.add(new BlockOutcome(i, language.get().name(), blockVerdict, exitCode, run.wallMicros() / 1000,
                    run.zygote() ? BlockOutcome.ZYGOTE : BlockOutcome.EXEC));
            verdict = blockVerdict;
            message = explain(blockVerdict, run, request, language.get());
            words = inWords(blockVerdict, exitCode, run, request, language.get());
            if (blockVerdict != Verdict.OK) {
                break;
            }
        }
        String out = decode(output.toByteArray());
        // The model reads this text: a verdict other than a plain result is said in words, on a line of its own
        // (before AG2's own "Timeout", which stays the last line of a timed-out run's reply).
        String said = words.isEmpty() ? "" : (out.isEmpty() || out.endsWith("\n") ? "" : "\n") + WORDS_PREFIX + words;
        String ag2Output = verdict == Verdict.TIMEOUT ? out + said + "\nTimeout" : out + said;
        return new ExecutionResult(verdict, exitCode, signal, decode(stdout.toByteArray()), decode(stderr.toByteArray()),
                out, stdoutTruncated, stderrTruncated, stdout.size(), stderr.size(), wallMicros / 1000,
                peak < 0 ? OptionalLong.empty() : OptionalLong.of(peak), written, outcomes, message, backendName,
                ExecutionResult.ag2Reply(exitCode, ag2Output));
    }

    /**
     * A block's whole environment: the engine's run environment, the language's, the request's. The one place it is
     * put together, so that a scrub's prime ({@link #prime}) and the blocks that fork from its zygote agree on it.
     */
    private static Map<String, String> environment(EngineSettings settings, Language language, Map<String, String> request) {
        Map<String, String> env = new LinkedHashMap<>(settings.runEnvironment());
        env.putAll(language.environment());
        env.putAll(request);
        return env;
    }

    /**
     * The run whose pre-initialised interpreter a sandbox starts before its next block comes (a pooled or recycled
     * sandbox, see {@link io.agentexec.sandbox.agent.Scrub}): the command, environment and directory of a block of
     * {@code language} with no environment of its own, so that such a block forks from it. Empty where that block
     * would get no zygote.
     */
    static Optional<RunSpec> prime(EngineSettings settings, String backendName, Language language, Limits limits,
                                   String workspace) {
        return zygoteFor(settings, backendName, language, limits, true).map(z -> new RunSpec(
                language.commandFor("prime." + language.extension()), environment(settings, language, Map.of()),
                workspace, new byte[0], limits.timeout().toMillis(), 0, 0, limits.workspaceBytes(), OptionalLong.empty(),
                Optional.of(z)));
    }

    /**
     * A one-off is done with the sandbox ({@link OneOffRun#close}): where its backend recycles sandboxes and the run
     * ended cleanly, the sandbox is scrubbed and kept for the same owner's next one-off, its interpreter for the
     * request's first language started again; otherwise it ends. Clean means: the session is usable, the verdict is
     * OK or RUNTIME_ERROR (the program ended by itself: no timeout, memory or output kill, no cancel, no refusal, no
     * sandbox failure), and every file it reported is a workspace path. Returns whether the sandbox was kept.
     */
    boolean release(ExecutionResult result, ExecutionRequest request) {
        boolean clean = isUsable() && endedCleanly(result);
        Optional<RunSpec> prime = Optional.empty();
        if (clean) {
            String first = request.blocks().isEmpty() ? "python" : request.blocks().get(0).language();
            String tag = first.isBlank() ? inferLanguage(request.blocks().get(0).code()) : first;
            prime = settings.languages().find(tag)
                    .flatMap(l -> prime(settings, backendName, l, request.limits(), backend.workspace()));
        }
        return backend.recycle(clean, prime);
    }

    /** A run after which its sandbox may serve another run of the same owner (see {@link #release}). */
    static boolean endedCleanly(ExecutionResult result) {
        boolean verdict = result.verdict() == Verdict.OK || result.verdict() == Verdict.RUNTIME_ERROR;
        boolean inWorkspace = result.filesWritten().stream().map(FileWritten::path).allMatch(path ->
                !path.isEmpty() && !path.startsWith("/") && !path.contains("\0")
                        && java.util.Arrays.stream(path.split("/")).noneMatch(part -> part.equals("..")));
        return verdict && inWorkspace;
    }

    /** Whether a block of this language, with these limits, would ask for a zygote here. */
    static boolean forks(EngineSettings settings, String backendName, Language language, Limits limits) {
        return zygoteFor(settings, backendName, language, limits, true).isPresent();
    }

    /**
     * The zygote a block of this language asks the agent for: where the language has one, zygotes are enabled, the
     * agent is contained (not unsafe-local) and the block's memory limit leaves room for one.
     */
    private static Optional<RunSpec.Zygote> zygoteFor(EngineSettings settings, String backendName, Language language,
                                                      Limits limits, boolean prepare) {
        ZygoteSettings z = settings.zygote();
        if (language.zygote().isEmpty() || !z.enabled() || UNCONTAINED_BACKEND.equals(backendName)
                || limits.memoryBytes() < z.minMemoryBytes()) {
            return Optional.empty();
        }
        Zygote zygote = language.zygote().get();
        byte[] source = bootstraps.computeIfAbsent(zygote, Zygote::source);
        return Optional.of(new RunSpec.Zygote(language.interpreterArgumentCount(), zygote.startArguments(), source,
                z.startTimeout(), z.forkTimeout(), z.forksPerZygote(), z.maxRestarts(), prepare));
    }

    /**
     * How long past a run's timeout the agent may take to answer: with zygotes, a run (of any language) may first
     * wait for one still starting (no user code runs before it is locked down), then for a fork of it.
     */
    private Duration backstop() {
        ZygoteSettings z = settings.zygote();
        return z.enabled() ? settings.agentBackstop().plus(z.startTimeout()).plus(z.forkTimeout()) : settings.agentBackstop();
    }

    /** What the engine saw decides, in this order: it cut the output, the clock ran out, the kernel OOM-killed. */
    static Verdict judge(RunOutcome run) {
        if (run.cancelled()) {
            return Verdict.CANCELLED;
        }
        if (run.outputLimitHit()) {
            return Verdict.OUTPUT_LIMIT;
        }
        if (run.timedOut()) {
            return Verdict.TIMEOUT;
        }
        if (run.oomKilled()) {
            return Verdict.MEMORY_LIMIT;
        }
        return run.exitCode() == 0 && run.signal() == 0 ? Verdict.OK : Verdict.RUNTIME_ERROR;
    }

    private static String explain(Verdict verdict, RunOutcome run, ExecutionRequest request, Language language) {
        return switch (verdict) {
            case OUTPUT_LIMIT -> "output exceeded " + request.limits().outputBytesPerStream() + " bytes per stream; the run was killed";
            case CANCELLED -> "cancelled by the caller; every process of the run was killed";
            case TIMEOUT -> "timed out after " + request.limits().timeout().toMillis() + " ms; every process of the run was killed";
            case MEMORY_LIMIT -> "killed by the kernel for exceeding " + request.limits().memoryBytes() + " bytes of memory";
            case RUNTIME_ERROR -> run.spawnFailed()
                    ? "cannot start " + language.command().get(0) + " (errno " + run.spawnErrno() + "): is it installed in this image?"
                    : "";
            default -> "";
        };
    }

    /**
     * The verdict in words for the model, where the output alone does not say it (AG2's format has no place for
     * it: a killed run just shows exit code 137): empty for a plain result.
     */
    static String inWords(Verdict verdict, int exitCode, RunOutcome run, ExecutionRequest request, Language language) {
        return switch (verdict) {
            case TIMEOUT -> "timed out after " + seconds(request.limits().timeout())
                    + " s: the run was stopped and every process it started was killed";
            case MEMORY_LIMIT -> "killed for exceeding " + megabytes(request.limits().memoryBytes())
                    + " MB of memory (exit code " + exitCode + ")";
            case OUTPUT_LIMIT -> "output cut at " + request.limits().outputBytesPerStream() + " bytes (stdout and stderr "
                    + "each); the run was killed for printing more (exit code " + exitCode + ")";
            case CANCELLED -> "cancelled: the run was stopped and every process it started was killed";
            case RUNTIME_ERROR -> run.spawnFailed() ? "interpreter missing: cannot start " + language.command().get(0)
                    + " in this sandbox's image (errno " + run.spawnErrno() + ")" : "";
            default -> "";
        };
    }

    private static String seconds(java.time.Duration d) {
        return d.toMillis() % 1000 == 0 ? Long.toString(d.toSeconds()) : Double.toString(d.toMillis() / 1000.0);
    }

    private static String megabytes(long bytes) {
        return bytes % (1024 * 1024) == 0 ? Long.toString(bytes / (1024 * 1024))
                : String.format(java.util.Locale.ROOT, "%.1f", bytes / (1024.0 * 1024));
    }

    /** AG2's infer_lang: a block without a tag is shell if it starts like a command, else Python. */
    private static String inferLanguage(String code) {
        String c = code.stripLeading();
        return c.startsWith("python ") || c.startsWith("pip") || c.startsWith("python3 ") ? "sh" : "python";
    }

    /** Output is bytes; JSON needs text. Invalid UTF-8 becomes U+FFFD rather than breaking the response. */
    private static String decode(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);
    }

    private static String md5(String code) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(code.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * Ends the run in progress, if any, from another thread: its processes are killed and
     * {@link #execute} returns with verdict CANCELLED. The session stays usable.
     */
    public void cancelRunning() {
        if (running) {
            backend.channel().cancel();
        }
    }

    /** Places a file in the workspace; the path must stay inside it. */
    public void writeFile(String path, byte[] content) {
        FilenameDirective.check(path).ifPresent(problem -> {
            throw new InvalidRequestException(problem);
        });
        requireUsable();
        try {
            backend.channel().writeFile(path, content, 0644, FILE_TIMEOUT);
        } catch (AgentException e) {
            broken = true; // no answer in time: a late one would be taken for the next request's
            throw e;
        }
    }

    /** Reads a workspace file of at most {@code maxBytes}. */
    public byte[] readFile(String path, long maxBytes) {
        FilenameDirective.check(path).ifPresent(problem -> {
            throw new InvalidRequestException(problem);
        });
        requireUsable();
        try {
            return backend.channel().readFile(path, maxBytes, FILE_TIMEOUT);
        } catch (AgentException e) {
            broken = true; // no answer in time: a late one would be taken for the next request's
            throw e;
        }
    }

    /**
     * The workspace as a tar archive, to move the sandbox to another worker: GNU tar from the sandbox's image, run by
     * its agent as the sandbox's user, so nothing of the workspace is read or parsed outside a sandbox. At most
     * {@code maxBytes} (the workspace limit and tar's headers): past that, as when tar fails (an unreadable file) or
     * outlives {@code timeout}, it throws {@link WorkspaceArchiveException} and the sandbox stays as it was.
     */
    public synchronized byte[] exportWorkspace(Limits limits, long maxBytes, Duration timeout) {
        RunOutcome run = archiveRun(List.of("tar", "--create", "--file=-", "."), new byte[0], limits, maxBytes, timeout);
        if (run.outputLimitHit() || run.stdoutTruncated()) {
            throw new WorkspaceArchiveException("the workspace's archive is larger than " + maxBytes + " bytes");
        }
        archiveChecked(run, "pack");
        return run.stdout();
    }

    /**
     * Unpacks an archive made by {@link #exportWorkspace} (in another sandbox) into this sandbox's workspace, inside the
     * sandbox, as its user: modes kept, the workspace directory itself left as it is. Throws
     * {@link WorkspaceArchiveException} when tar fails or outlives {@code timeout}.
     */
    public synchronized void importWorkspace(byte[] archive, Limits limits, Duration timeout) {
        archiveChecked(archiveRun(List.of("tar", "--extract", "--file=-", "--preserve-permissions", "--no-overwrite-dir"),
                archive, limits, 0, timeout), "unpack");
    }

    private RunOutcome archiveRun(List<String> argv, byte[] stdin, Limits limits, long stdoutBytes, Duration timeout) {
        requireUsable();
        RunSpec spec = new RunSpec(argv, settings.runEnvironment(), backend.workspace(), stdin, timeout.toMillis(),
                stdoutBytes, ARCHIVE_ERROR_BYTES, limits.workspaceBytes(), backend.runProcessLimit(limits));
        try {
            return backend.channel().run(spec, OutputListener.NONE, settings.agentBackstop());
        } catch (AgentException e) {
            broken = true; // no answer in time: a late one would be taken for the next request's
            throw e;
        }
    }

    private static void archiveChecked(RunOutcome run, String what) {
        if (run.timedOut()) {
            throw new WorkspaceArchiveException("tar could not " + what + " the workspace in time");
        }
        if (run.exitCode() != 0 || run.signal() != 0) {
            throw new WorkspaceArchiveException("tar could not " + what + " the workspace (exit " + run.exitCode()
                    + (run.signal() != 0 ? ", signal " + run.signal() : "") + "): "
                    + new String(run.stderr(), StandardCharsets.UTF_8).strip());
        }
    }

    /** Packing or unpacking a workspace failed; the session itself is still usable unless it says otherwise. */
    public static final class WorkspaceArchiveException extends RuntimeException {
        public WorkspaceArchiveException(String message) {
            super(message);
        }
    }

    private void requireUsable() {
        if (!isUsable()) {
            throw new AgentException("sandbox " + id() + " is no longer usable");
        }
    }

    @Override
    public void close() {
        backend.close();
    }
}
