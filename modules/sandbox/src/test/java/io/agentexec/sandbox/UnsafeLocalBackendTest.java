package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.agent.AgentException;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** The development-only backend still honours timeouts, caps and the result model. */
class UnsafeLocalBackendTest {
    @Test
    void runsCodeAndKillsItsProcessGroupOnTimeout() {
        try (SandboxEngine engine = SandboxEngine.start(EngineSettings.load().withBackend(BackendChoice.UNSAFE_LOCAL))) {
            assertEquals("unsafe-local", engine.backendName());
            ExecutionResult ok = engine.execute(ExecutionRequest.of("python", "print(6 * 7)", engine.defaultLimits()));
            assertEquals("42\n", ok.stdout());
            String marker = "agentexec-local-" + UUID.randomUUID();
            ExecutionResult slow = engine.execute(ExecutionRequest.of("bash", "bash -c 'sleep 1000; true' " + marker + " & wait",
                    engine.defaultLimits().withTimeout(Duration.ofSeconds(1))));
            assertEquals(Verdict.TIMEOUT, slow.verdict());
            assertEquals(List.of(), HostProcesses.withMarker(marker));
        }
    }

    private static void signal(long pid, String signal) throws Exception {
        assertTrue(new ProcessBuilder("kill", "-" + signal, Long.toString(pid)).start().waitFor(10, TimeUnit.SECONDS));
    }

    /** A stalled agent must not leave a session that looks usable: its late answer would be read as the next one's. */
    @Test
    void aFileOperationThatTimesOutMarksTheSessionBroken() throws Exception {
        try (SandboxEngine engine = SandboxEngine.start(EngineSettings.load().withBackend(BackendChoice.UNSAFE_LOCAL));
             SandboxSession session = engine.openSession("python", engine.defaultLimits())) {
            List<Long> agent = HostProcesses.withMarker(session.id()); // its workspace path holds the session id
            assertEquals(1, agent.size(), agent::toString);
            signal(agent.get(0), "STOP");
            try {
                assertThrows(AgentException.class, () -> session.readFile("anything.txt", 1024));
                assertFalse(session.isUsable(), "a session whose agent did not answer a file operation is broken");
                ExecutionResult next = session.execute(ExecutionRequest.of("bash", "echo next", engine.defaultLimits()));
                assertEquals(Verdict.SANDBOX_ERROR, next.verdict(), next::toString);
            } finally {
                signal(agent.get(0), "CONT");
            }
        }
    }
}
