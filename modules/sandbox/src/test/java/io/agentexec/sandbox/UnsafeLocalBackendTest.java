package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.List;
import java.util.UUID;
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
}
