package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.model.Container;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.backend.RuntimeHealth;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.docker.DockerBackend;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@code runtime = runsc}: the same engine under gVisor (Debian's runsc, registered with dockerd by
 * scripts/setup.sh). The user's code talks to gVisor's kernel, not the host's.
 *
 * <p>gVisor is optional: its tests run only where the engine's health check of runsc passed (Debian's 2022 runsc
 * fails {@code ls /proc} with EINVAL on some kernels), and say why they are skipped otherwise. How a runtime that
 * fails the check is refused is tested on every machine, with a runtime the daemon does not have. Nothing here
 * depends on the machine's speed: timeouts are generous, and only the runs that test a timeout have a short one.
 */
class GvisorRuntimeTest {
    private static final String MISSING_RUNTIME = "agentexec-test-no-such-runtime";
    private static SandboxEngine engine;
    private static DockerBackend backend;
    private static RuntimeHealth runsc;

    private final DockerClient docker = backend.dockerClient();
    private final SandboxOptions gvisor = engine.settings().docker().defaults().withRuntime(Optional.of("runsc"));
    /** Generous: a bound on a hung run, never a speed requirement. */
    private final Limits limits = engine.defaultLimits().withTimeout(Duration.ofSeconds(120));

    @BeforeAll
    static void startAnEngineThatMayUseGvisor() {
        Config config = ConfigFactory.parseString("agentexec.sandbox.docker { warm-pool.size = 0, allowed-runtimes = [runsc, "
                + MISSING_RUNTIME + "] }").withFallback(ConfigFactory.load());
        engine = SandboxEngine.start(EngineSettings.fromConfig(config).withBackend(BackendChoice.DOCKER));
        backend = (DockerBackend) engine.backend();
        runsc = backend.awaitRuntimeHealth(Optional.of("runsc"));
        System.out.println("GvisorRuntimeTest: " + runsc
                + (runsc.status() == RuntimeHealth.Status.HEALTHY ? "" : "; the gVisor tests are skipped here"));
    }

    @AfterAll
    static void closeTheEngine() {
        if (engine != null) {
            engine.close();
        }
    }

    private static void assumeGvisorIsHealthy() {
        Assumptions.assumeTrue(runsc.status() == RuntimeHealth.Status.HEALTHY,
                () -> "gVisor (runsc) failed the engine's health check on this machine, so it is not used here: " + runsc);
    }

    /** A runtime failing its check is never used: it is reported, and a request for it is refused naming why. */
    @Test
    void aRuntimeThatFailsItsHealthCheckIsReportedAndRefusedNamingTheFailure() {
        RuntimeHealth missing = backend.awaitRuntimeHealth(Optional.of(MISSING_RUNTIME));
        assertEquals(RuntimeHealth.Status.UNHEALTHY, missing.status(), missing::toString);
        assertTrue(missing.detail().contains("does not start"), missing::detail);
        assertTrue(engine.runtimeHealth().contains(missing), () -> engine.runtimeHealth().toString());
        assertTrue(engine.runtimeProblems().stream().anyMatch(p -> p.contains(MISSING_RUNTIME) && p.contains(missing.detail())),
                () -> engine.runtimeProblems().toString());
        SandboxOptions options = engine.settings().docker().defaults().withRuntime(Optional.of(MISSING_RUNTIME));
        SandboxUnavailableException e = assertThrows(SandboxUnavailableException.class,
                () -> engine.openSession("agentexec/python:bookworm", limits, options).close());
        assertTrue(e.getMessage().contains("runtime " + MISSING_RUNTIME + " failed its health check"), e.getMessage());
        assertTrue(e.getMessage().contains(missing.detail()), e.getMessage());
        assertEquals(RuntimeHealth.Status.HEALTHY, backend.awaitRuntimeHealth(Optional.empty()).status(),
                "the daemon's default runtime passes the same check");
    }

    /** Whatever runsc's health here, it is either used and works, or refused with the check's finding. */
    @Test
    void runscIsUsedOnlyWhenItsHealthCheckPassed() {
        if (runsc.status() == RuntimeHealth.Status.HEALTHY) {
            try (SandboxSession session = engine.openSession("agentexec/python:bookworm", limits, gvisor)) {
                assertEquals(Verdict.OK, session.execute(ExecutionRequest.of("bash", "ls /proc > /dev/null", limits)).verdict());
            }
        } else {
            SandboxUnavailableException e = assertThrows(SandboxUnavailableException.class,
                    () -> engine.openSession("agentexec/python:bookworm", limits, gvisor).close());
            assertTrue(e.getMessage().contains("runtime runsc failed its health check") && e.getMessage().contains(runsc.detail()),
                    e.getMessage());
        }
    }

    @Test
    void codeRunsUnderGvisorsKernelWithTheSameResultModel() {
        assumeGvisorIsHealthy();
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
        assumeGvisorIsHealthy();
        String marker = "agentexec-gvisor-" + UUID.randomUUID();
        // The timeout under test: long enough for bash to start and print on a loaded machine.
        Limits short_ = limits.withTimeout(Duration.ofSeconds(10));
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
        assumeGvisorIsHealthy();
        Limits pids = limits.withPids(16);
        long hostPids = engine.settings().docker().runtimeHostPids().get("runsc");
        try (SandboxSession session = engine.openSession("agentexec/python:bookworm", pids, gvisor)) {
            assertEquals(hostPids, docker.inspectContainerCmd(containerOf(session)).exec().getHostConfig().getPidsLimit());
            assertEquals("16\n", session.execute(ExecutionRequest.of("bash", "ulimit -u", pids)).stdout());
            ExecutionResult burst = session.execute(ExecutionRequest.of("bash",
                    "for i in $(seq 1 40); do (true | cat; ls /proc > /dev/null); done\necho done", pids));
            assertEquals(Verdict.OK, burst.verdict(), burst::toString);
            // A fork bomb runs until its timeout: a short one, and either ending is fine (not a speed test).
            ExecutionResult bomb = session.execute(ExecutionRequest.of("python",
                    "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
                    pids.withTimeout(Duration.ofSeconds(10))));
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
        assumeGvisorIsHealthy();
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
