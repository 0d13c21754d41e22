package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.model.Container;
import io.agentexec.sandbox.docker.DockerBackend;
import io.agentexec.sandbox.docker.DockerOptions;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * {@code runtime = runsc}: the same engine under gVisor (Debian's runsc, registered with dockerd by
 * scripts/setup.sh). The user's code talks to gVisor's kernel, not the host's.
 */
class GvisorRuntimeTest {
    private final SandboxEngine engine = Backends.docker();
    private final DockerClient docker = ((DockerBackend) engine.backend()).dockerClient();
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
            assertEquals("0\n", count.stdout(), () -> "nothing of the timed-out run is left inside: " + count);
        }
    }

    /**
     * gVisor runs each user process on host threads and stub processes in the container's cgroup: the host pids
     * limit leaves room for them (else a burst of short processes kills the whole sandbox: a sentry panic), and
     * the user's limit is enforced inside, by gVisor's own count of the sandbox's processes.
     */
    @Test
    void processLimitsHoldUnderGvisorWithoutKillingTheSandbox() {
        Limits pids = limits.withPids(16).withTimeout(Duration.ofSeconds(4));
        long hostPids = engine.settings().docker().runtimeHostPids().get("runsc");
        try (SandboxSession session = engine.openSession("agentexec/python:bookworm", pids, gvisor)) {
            assertEquals(hostPids, docker.inspectContainerCmd(containerOf(session)).exec().getHostConfig().getPidsLimit());
            assertEquals("16\n", session.execute(ExecutionRequest.of("bash", "ulimit -u", pids)).stdout());
            ExecutionResult burst = session.execute(ExecutionRequest.of("bash",
                    "for i in $(seq 1 40); do (true | cat; ls /proc > /dev/null); done\necho done", pids));
            assertEquals(Verdict.OK, burst.verdict(), burst::toString);
            ExecutionResult bomb = session.execute(ExecutionRequest.of("python",
                    "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass", pids));
            assertTrue(bomb.verdict() == Verdict.TIMEOUT || bomb.verdict() == Verdict.RUNTIME_ERROR, bomb::toString);
            ExecutionResult after = session.execute(ExecutionRequest.of("python", "print('alive')", pids));
            assertEquals("alive\n", after.stdout(), () -> "the sandbox survives a fork bomb: " + after);
            ExecutionResult raised = session.execute(ExecutionRequest.of("bash", "ulimit -u", pids.withPids(32)));
            assertEquals("32\n", raised.stdout(), raised::toString);
            assertEquals(hostPids, docker.inspectContainerCmd(containerOf(session)).exec().getHostConfig().getPidsLimit(),
                    "a pids change is applied inside, the host limit stays");
            ExecutionResult moreMemory = session.execute(ExecutionRequest.of("bash", "true",
                    pids.withMemoryBytes(pids.memoryBytes() * 2)));
            assertEquals(Verdict.POLICY_VIOLATION, moreMemory.verdict(), moreMemory::toString);
            assertTrue(moreMemory.message().contains("cannot change a live sandbox's memory or CPU limit"), moreMemory::message);
            assertEquals(Verdict.OK, session.execute(ExecutionRequest.of("bash", "true", pids)).verdict(),
                    "the refused run leaves the sandbox usable");
        }
    }

    private String containerOf(SandboxSession session) {
        return docker.listContainersCmd().withShowAll(true)
                .withLabelFilter(Map.of("io.agentexec.session", session.id())).exec().stream()
                .map(Container::getId)
                .findFirst().orElseThrow();
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
