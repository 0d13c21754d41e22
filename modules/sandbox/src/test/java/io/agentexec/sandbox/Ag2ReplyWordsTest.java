package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/**
 * The reply an AG2 agent hands its model (ag2Reply) carries the verdict in words wherever AG2's own format does
 * not: before, a memory bomb read "exitcode: 137 (execution failed)\nCode output: allocating\n" and an output flood
 * "exitcode: 137 ..." with the first MiB of it, leaving the model to guess why. Real Docker.
 */
class Ag2ReplyWordsTest {
    private static Limits limits(SandboxEngine engine) {
        return engine.defaultLimits().withTimeout(Duration.ofSeconds(60));
    }

    @Test
    void aMemoryBombIsSaidToHaveExceededItsMemory() {
        SandboxEngine engine = Backends.docker();
        ExecutionResult r = engine.execute(ExecutionRequest.of("python",
                "print('allocating', flush=True)\nchunks = []\nwhile True:\n    chunks.append(b'x' * (16 * 1024 * 1024))",
                limits(engine).withMemoryBytes(64L * 1024 * 1024)));
        assertEquals(Verdict.MEMORY_LIMIT, r.verdict(), r::toString);
        assertEquals("exitcode: 137 (execution failed)\nCode output: allocating\n"
                + "[agentexec] killed for exceeding 64 MB of memory (exit code 137)", r.ag2Reply());
    }

    @Test
    void aTimeoutIsSaidInSecondsBeforeAg2sOwnTimeoutLine() {
        SandboxEngine engine = Backends.docker();
        ExecutionResult r = engine.execute(ExecutionRequest.of("python",
                "import time\nprint('start', flush=True)\ntime.sleep(60)", limits(engine).withTimeout(Duration.ofSeconds(1))));
        assertEquals(Verdict.TIMEOUT, r.verdict(), r::toString);
        assertEquals("exitcode: 124 (execution failed)\nCode output: start\n[agentexec] timed out after 1 s: the run was "
                + "stopped and every process it started was killed\nTimeout", r.ag2Reply());
    }

    @Test
    void outputOverTheCapIsSaidToBeCut() {
        SandboxEngine engine = Backends.docker();
        ExecutionResult r = engine.execute(ExecutionRequest.of("bash", "yes", limits(engine).withOutputBytesPerStream(1000)));
        assertEquals(Verdict.OUTPUT_LIMIT, r.verdict(), r::toString);
        assertTrue(r.ag2Reply().endsWith("\n[agentexec] output cut at 1000 bytes (stdout and stderr each); the run was "
                + "killed for printing more (exit code " + r.exitCode() + ")"), r::ag2Reply);
    }

    @Test
    void aMissingInterpreterIsSaid() {
        SandboxEngine engine = Backends.docker();
        ExecutionResult r = engine.execute(ExecutionRequest.builder(limits(engine)).block("javascript", "console.log(1)")
                .image("agentexec/python:bookworm").build());
        assertEquals(Verdict.RUNTIME_ERROR, r.verdict(), r::toString);
        assertTrue(r.ag2Reply().contains("[agentexec] interpreter missing: cannot start node in this sandbox's image"),
                r::ag2Reply);
    }

    @Test
    void aPlainResultOrFailureGetsNoWords() {
        SandboxEngine engine = Backends.docker();
        assertEquals("exitcode: 0 (execution succeeded)\nCode output: 1\n",
                engine.execute(ExecutionRequest.of("python", "print(1)", limits(engine))).ag2Reply());
        ExecutionResult failed = engine.execute(ExecutionRequest.of("python", "raise SystemExit(3)", limits(engine)));
        assertFalse(failed.ag2Reply().contains("[agentexec]"), failed::ag2Reply);
    }
}
