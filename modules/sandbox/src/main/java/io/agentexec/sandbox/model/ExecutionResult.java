package io.agentexec.sandbox.model;

import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.OptionalLong;

/**
 * The judged result of one request, in the shape a code-execution API returns (compare Judge0's
 * status and Piston's run object), plus AG2's reply text.
 *
 * @param exitCode     exit status of the last block run; 128+N when it died of signal N
 * @param signal       the signal that ended the last block, when one did
 * @param output       stdout and stderr interleaved in the order they arrived (AG2's "Code output")
 * @param stdoutBytes  bytes of stdout kept (at most the cap)
 * @param peakMemoryBytes peak resident memory of the block's main process, where the kernel reports it
 * @param message      why the verdict is what it is, for humans; empty for plain OK / RUNTIME_ERROR
 * @param ag2Reply     {@code exitcode: N (execution succeeded|execution failed)\nCode output: ...}
 */
public record ExecutionResult(
        Verdict verdict,
        int exitCode,
        OptionalInt signal,
        String stdout,
        String stderr,
        String output,
        boolean stdoutTruncated,
        boolean stderrTruncated,
        long stdoutBytes,
        long stderrBytes,
        long wallTimeMs,
        OptionalLong peakMemoryBytes,
        List<FileWritten> filesWritten,
        List<BlockOutcome> blocks,
        String message,
        String backend,
        String ag2Reply) {

    public ExecutionResult {
        Objects.requireNonNull(verdict, "verdict");
        Objects.requireNonNull(signal, "signal");
        Objects.requireNonNull(stdout, "stdout");
        Objects.requireNonNull(stderr, "stderr");
        Objects.requireNonNull(output, "output");
        Objects.requireNonNull(peakMemoryBytes, "peakMemoryBytes");
        filesWritten = List.copyOf(filesWritten);
        blocks = List.copyOf(blocks);
        Objects.requireNonNull(message, "message");
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(ag2Reply, "ag2Reply");
    }

    public boolean succeeded() {
        return verdict == Verdict.OK;
    }

    /** AG2's reply to the agent that wrote the code, exactly as its UserProxyAgent formats it. */
    public static String ag2Reply(int exitCode, String output) {
        return "exitcode: " + exitCode + " (" + (exitCode == 0 ? "execution succeeded" : "execution failed")
                + ")\nCode output: " + output;
    }

    /** A result for a request refused or failed before any of the user's code ran. */
    public static ExecutionResult refused(Verdict verdict, int exitCode, String message, String backend) {
        return new ExecutionResult(verdict, exitCode, OptionalInt.empty(), "", message, message, false, false,
                0, message.length(), 0, OptionalLong.empty(), List.of(), List.of(), message, backend,
                ag2Reply(exitCode, message));
    }
}
