package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.sandbox.docker.DockerOptions;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * {@code runtime = runsc}: the same engine under gVisor (Debian's runsc, registered with dockerd by
 * scripts/setup.sh). The user's code talks to gVisor's kernel, not the host's.
 */
class GvisorRuntimeTest {
    private final SandboxEngine engine = Backends.docker();
    private final DockerOptions gvisor = engine.settings().docker().defaults().withRuntime(Optional.of("runsc"));
    private final Limits limits = engine.defaultLimits().withTimeout(Duration.ofSeconds(20));

    @Test
    void codeRunsUnderGvisorsKernelWithTheSameResultModel() {
        try (SandboxSession session = engine.openSession("agentexec/python:bookworm", limits, gvisor)) {
            ExecutionResult r = session.execute(ExecutionRequest.of("python",
                    "import os\nprint(os.getuid())\nprint(open('/proc/version').read().split()[2])", limits));
            assertEquals(Verdict.OK, r.verdict(), r::toString);
            String[] lines = r.stdout().split("\n");
            assertEquals("65534", lines[0]);
            assertEquals("4.4.0", lines[1], "gVisor reports its own kernel version, not the host's");
        }
    }

    @Test
    void timeoutsStillKillTheWholeTreeUnderGvisor() {
        String marker = "agentexec-gvisor-" + UUID.randomUUID();
        Limits short_ = limits.withTimeout(Duration.ofSeconds(2));
        try (SandboxSession session = engine.openSession("agentexec/python:bookworm", short_, gvisor)) {
            ExecutionResult r = session.execute(ExecutionRequest.of("bash",
                    "(setsid bash -c 'sleep 1000; true' " + marker + " &)\necho started\nsleep 1000", short_));
            assertEquals(Verdict.TIMEOUT, r.verdict(), r::toString);
            assertEquals("started\n", r.stdout());
            ExecutionResult count = session.execute(ExecutionRequest.of("bash",
                    "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done | grep -c 'sleep 100[0]; true' || true", limits));
            assertEquals("0\n", count.stdout(), "nothing of the timed-out run is left inside");
        }
    }

    @Test
    void aMemoryBombUnderGvisorIsAMemoryLimitNotASandboxError() {
        Limits small = limits.withMemoryBytes(96L * 1024 * 1024);
        try (SandboxSession session = engine.openSession("agentexec/python:bookworm", small, gvisor)) {
            ExecutionResult r = session.execute(ExecutionRequest.of("python",
                    "chunks = []\nwhile True:\n    chunks.append(b'x' * (16 * 1024 * 1024))", small));
            assertEquals(Verdict.MEMORY_LIMIT, r.verdict(), r::toString);
            assertEquals(137, r.exitCode());
            assertTrue(List.of("memory").stream().allMatch(r.message()::contains), r::message);
        }
    }
}
