package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.model.BlockOutcome;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code zygote.enabled = auto} on a real engine: it measures this machine in a real sandbox and its sessions follow
 * what it found. Which way it goes is the machine's (forks win on most, plain starts on a PVM guest): the test asserts
 * that a verdict is reached from a CPU measurement and obeyed, not which one. The rest of the suite pins zygotes on
 * (the parent pom's AGENTEXEC_ZYGOTE), so that what it asserts about the path does not depend on the machine.
 */
class ZygoteProbeEngineTest {
    private static final String MEASURING = "until the probe has measured";

    static Stream<BackendChoice> engines() {
        return Stream.of(BackendChoice.DOCKER, BackendChoice.BWRAP);
    }

    private static EngineSettings settings(BackendChoice backend) {
        return EngineSettings.load().withBackend(backend);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void withAutoTheEngineMeasuresThisMachineOnceAndLaterSessionsFollowWhatItFound(BackendChoice backend)
            throws InterruptedException {
        EngineSettings s = settings(backend);
        try (SandboxEngine engine = SandboxEngine.start(s.withZygote(s.zygote().withAuto()))) {
            long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
            while (engine.startPath().contains(MEASURING) && System.nanoTime() < deadline) {
                Thread.sleep(100);
            }
            String path = engine.startPath();
            System.out.println(backend + ": " + path);
            boolean zygotes = path.startsWith("zygotes (a forked block cost");
            assertTrue(zygotes || path.startsWith("plain starts (a forked block cost"), path);
            assertTrue(path.contains("rounds of the machine's CPU; in all "), path);
            assertTrue(path.endsWith("(agentexec.sandbox.zygote.enabled = auto)"), path);
            try (SandboxSession session = engine.openSession("python", engine.defaultLimits())) {
                run(session, engine, "pass");
                assertEquals(zygotes ? BlockOutcome.ZYGOTE : BlockOutcome.EXEC, run(session, engine, "print(1)")
                        .blocks().get(0).start(), path);
            }
        }
    }

    /** Configured on or off, nothing is measured, and the engine says which and why. */
    @Test
    void configuredOnOrOffNothingIsMeasured() {
        EngineSettings s = settings(BackendChoice.BWRAP);
        try (SandboxEngine off = SandboxEngine.start(s.withZygote(s.zygote().withEnabled(false)));
             SandboxEngine on = SandboxEngine.start(s.withZygote(s.zygote().withEnabled(true)))) {
            assertEquals("plain starts (agentexec.sandbox.zygote.enabled = false)", off.startPath());
            assertEquals("zygotes (agentexec.sandbox.zygote.enabled = true)", on.startPath());
            try (SandboxSession session = off.openSession("python", off.defaultLimits())) {
                run(session, off, "pass");
                assertEquals(BlockOutcome.EXEC, run(session, off, "print(1)").blocks().get(0).start());
            }
        }
    }

    /** An engine closed while it measures ends the probe quietly; ZzNoLeftoversTest finds nothing of it after. */
    @Test
    void anEngineClosedWhileItMeasuresStopsTheProbe() {
        EngineSettings s = settings(BackendChoice.DOCKER);
        SandboxEngine engine = SandboxEngine.start(s.withZygote(s.zygote().withAuto()));
        assertTrue(engine.startPath().contains(MEASURING), engine.startPath());
        engine.close();
        assertTrue(engine.startPath().contains(MEASURING), "a closed engine decided nothing: " + engine.startPath());
    }

    private static ExecutionResult run(SandboxSession s, SandboxEngine engine, String code) {
        ExecutionResult r = s.execute(ExecutionRequest.of("python", code, engine.defaultLimits()));
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        return r;
    }
}
