package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.command.InspectContainerResponse;
import com.github.dockerjava.api.exception.NotFoundException;
import com.github.dockerjava.api.model.Container;
import com.github.dockerjava.api.model.HostConfig;
import com.github.dockerjava.api.model.LogConfig;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.backend.ImagePresence;
import io.agentexec.sandbox.backend.RuntimeHealth;
import io.agentexec.sandbox.docker.DockerBackend;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import io.agentexec.sandbox.model.Verdict;
import io.agentexec.sandbox.options.OptionRules;
import io.agentexec.sandbox.options.RunArgs;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Docker-specific behaviour, checked in what the daemon itself reports. */
class DockerBackendTest {
    private final SandboxEngine engine = Backends.docker();
    private final DockerBackend backend = (DockerBackend) engine.backend();
    private final DockerClient docker = backend.dockerClient();
    /** Bound on waiting for a closed session's container to be removed in the background. */
    private static final Duration REMOVAL_WAIT = Duration.ofSeconds(10);

    private static final List<String> SEED_SECURE_ARGS = List.of(
            "--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", "--memory", "512m", "--cpus", "0.5",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true");

    /** The container behind a session, found by the session label the backend puts on it. */
    private String containerOf(SandboxSession session) {
        return docker.listContainersCmd().withShowAll(true)
                .withLabelFilter(Map.of("io.agentexec.session", session.id())).exec().stream()
                .map(Container::getId)
                .findFirst().orElseThrow();
    }

    @Test
    void containersAreHardenedByDefault() {
        Limits limits = engine.defaultLimits();
        try (SandboxSession session = engine.openSession("agentexec/shell:bookworm", limits, engine.settings().docker().defaults())) {
            InspectContainerResponse info = docker.inspectContainerCmd(containerOf(session)).exec();
            HostConfig host = info.getHostConfig();
            assertEquals("none", host.getNetworkMode());
            assertTrue(host.getReadonlyRootfs());
            assertEquals("65534:65534", info.getConfig().getUser());
            assertEquals("[ALL]", Arrays.toString(host.getCapDrop()));
            assertEquals(List.of("no-new-privileges"), host.getSecurityOpts());
            assertEquals(limits.memoryBytes(), host.getMemory());
            assertEquals(limits.memoryBytes(), host.getMemorySwap(), "swap equal to memory: no swap at all");
            assertEquals((long) limits.pids(), host.getPidsLimit());
            assertEquals(100_000L, host.getCpuPeriod());
            assertEquals((long) (limits.cpus() * 100_000), host.getCpuQuota());
            assertTrue(host.getTmpFs().containsKey("/tmp"));
            assertTrue(host.getTmpFs().get("/workspace").contains("size=" + limits.workspaceBytes()));
            assertEquals("true", info.getConfig().getLabels().get("io.agentexec.managed"));
            assertTrue(info.getConfig().getEntrypoint()[0].endsWith("agentexec-agent"), "the agent is pid 1 and reaps zombies");

            ExecutionResult r = session.execute(ExecutionRequest.of("bash",
                    "touch /usr/x 2>&1 || true; touch /workspace/ok && echo workspace writable; cat /proc/1/cmdline | tr '\\0' ' '",
                    limits));
            assertTrue(r.stdout().contains("Read-only file system"), r::stdout);
            assertTrue(r.stdout().contains("workspace writable"), r::stdout);
        }
    }

    /**
     * Each spelling Docker would run as uid or gid 0 (or as a name the image resolves) never reaches a container,
     * whether it comes through docker_run_args or straight through the Java API: no container is created, so
     * nothing runs. Before the fix {@code 00}, {@code +0}, {@code -0} ran the code as uid 0.
     */
    @Test
    void userSpellingsThatCouldBeRootNeverReachAContainer() {
        Limits limits = engine.defaultLimits();
        SandboxOptions defaults = engine.settings().docker().defaults();
        List<String> ran = new ArrayList<>();
        for (String user : List.of("00", "+0", "-0", "1:0", "4294967296", "daemon", "0x0")) {
            String prefix = "agentexec-user-test-" + java.util.UUID.randomUUID().toString().substring(0, 8);
            try {
                RunArgs.apply(List.of("--user", user), defaults, limits, new OptionRules(defaults, Set.of("none"), Set.of()));
                ran.add(user + " accepted by docker_run_args");
            } catch (InvalidRequestException e) {
                assertTrue(e.getMessage().contains("root"), e.getMessage());
            }
            try (SandboxSession session = engine.openSession("agentexec/shell:bookworm", limits,
                    defaults.withUser(user).withNamePrefix(java.util.Optional.of(prefix)))) {
                ExecutionResult r = session.execute(ExecutionRequest.of("bash", "echo uid=$(id -u) gid=$(id -g)", limits));
                ran.add(user + " ran: " + r.stdout().strip() + r.message());
            } catch (InvalidRequestException e) {
                assertTrue(e.getMessage().contains("root"), e.getMessage());
            } catch (RuntimeException e) {
                ran.add(user + " reached Docker: " + e.getMessage());
            }
            List<String> created = docker.listContainersCmd().withShowAll(true).withNameFilter(List.of(prefix)).exec()
                    .stream().map(c -> Arrays.toString(c.getNames())).toList();
            if (!created.isEmpty()) {
                ran.add(user + " created " + created);
            }
        }
        assertEquals(List.of(), ran, "user spellings that must be refused before any container exists");
    }

    /**
     * Sandbox output (a tenant's secret, downloaded files) never lands in the daemon's logs on the host: the log
     * driver is none, and no file of the container's directory holds what the code printed. The attach stream,
     * not the log, carries the agent's frames.
     */
    @Test
    void sandboxContainersKeepNoLogsOnTheHost() throws java.io.IOException {
        String marker = "agentexec-secret-" + java.util.UUID.randomUUID();
        Limits limits = engine.defaultLimits();
        try (SandboxSession session = engine.openSession("agentexec/python:bookworm", limits,
                engine.settings().docker().defaults())) {
            ExecutionResult r = session.execute(ExecutionRequest.of("python",
                    "print('" + marker + "')\nopen('download.txt', 'w').write('" + marker + "-file')", limits));
            assertEquals(marker + "\n", r.stdout(), r::toString);
            assertEquals(marker + "-file", new String(session.readFile("download.txt", 1024), java.nio.charset.StandardCharsets.UTF_8));
            String id = containerOf(session);
            InspectContainerResponse info = docker.inspectContainerCmd(id).exec();
            java.nio.file.Path dir = java.nio.file.Path.of(docker.infoCmd().exec().getDockerRootDir(), "containers", id);
            java.util.Set<String> holding = new java.util.TreeSet<>();
            if (info.getLogPath() != null && !info.getLogPath().isEmpty()) {
                java.nio.file.Path log = java.nio.file.Path.of(info.getLogPath());
                if (java.nio.file.Files.exists(log) && contains(log, marker)) {
                    holding.add(log.toString());
                }
            }
            if (java.nio.file.Files.isDirectory(dir)) {
                try (var files = java.nio.file.Files.walk(dir)) {
                    for (java.nio.file.Path f : files.filter(java.nio.file.Files::isRegularFile).toList()) {
                        if (contains(f, marker)) {
                            holding.add(f.toString());
                        }
                    }
                }
            }
            assertEquals(Set.of(), holding, "host files holding the sandbox's output");
            assertEquals(LogConfig.LoggingType.NONE, info.getHostConfig().getLogConfig().getType(), "log driver");
        }
    }

    private static boolean contains(java.nio.file.Path file, String marker) throws java.io.IOException {
        return new String(java.nio.file.Files.readAllBytes(file), java.nio.charset.StandardCharsets.ISO_8859_1).contains(marker);
    }

    @Test
    void theSeedsDockerRunArgsBecomeTypedSettings() {
        SandboxOptions defaults = engine.settings().docker().defaults();
        RunArgs.Applied applied = RunArgs.apply(SEED_SECURE_ARGS, defaults, engine.defaultLimits(),
                new OptionRules(defaults, Set.of("none"), Set.of()));
        try (SandboxSession session = engine.openSession("agentexec/python:bookworm", applied.limits(), applied.options())) {
            HostConfig host = docker.inspectContainerCmd(containerOf(session)).exec().getHostConfig();
            assertEquals(512L * 1024 * 1024, host.getMemory());
            assertEquals(50_000L, host.getCpuQuota());
            ExecutionResult r = session.execute(ExecutionRequest.of("python", "print('secure')", applied.limits()));
            assertEquals("secure\n", r.stdout());
        }
    }

    @Test
    void aContainerNameFromAg2IsUsedAsPrefix() {
        SandboxOptions named = engine.settings().docker().defaults().withNamePrefix(java.util.Optional.of("ag2_code_executor"));
        try (SandboxSession session = engine.openSession("agentexec/python:bookworm", engine.defaultLimits(), named)) {
            String name = docker.inspectContainerCmd(containerOf(session)).exec().getName();
            assertEquals("/ag2_code_executor-" + session.id(), name);
        }
    }

    @Test
    void limitsChangeInPlaceBetweenRequestsOfASession() {
        Limits limits = engine.defaultLimits();
        try (SandboxSession session = engine.openSession("python", limits)) {
            String id = containerOf(session);
            session.execute(ExecutionRequest.of("python", "print(1)", limits.withMemoryBytes(256L * 1024 * 1024).withCpus(0.25)));
            HostConfig host = docker.inspectContainerCmd(id).exec().getHostConfig();
            assertEquals(256L * 1024 * 1024, host.getMemory());
            assertEquals(25_000L, host.getCpuQuota());
        }
    }

    @Test
    void closingASessionRemovesItsContainer() throws InterruptedException {
        SandboxSession session = engine.openSession("python", engine.defaultLimits());
        String id = containerOf(session);
        session.close();
        // The removal runs in the background after close returns (a one-off's caller does not wait for it).
        assertTrue(gone(id, REMOVAL_WAIT), "container " + id + " is still there " + REMOVAL_WAIT + " after close");
    }

    @Test
    void closingTheEngineWaitsForPendingRemovals() {
        Config noPool = ConfigFactory.parseString("agentexec.sandbox.docker.warm-pool.size = 0")
                .withFallback(ConfigFactory.load());
        SandboxEngine own = SandboxEngine.start(EngineSettings.fromConfig(noPool).withBackend(BackendChoice.DOCKER));
        List<String> sessions = new ArrayList<>();
        try {
            for (int i = 0; i < 3; i++) {
                SandboxSession session = own.openSession("python", own.defaultLimits());
                sessions.add(session.id());
                session.close();
            }
        } finally {
            own.close();
        }
        for (String session : sessions) {
            assertEquals(List.of(), docker.listContainersCmd().withShowAll(true)
                    .withLabelFilter(Map.of("io.agentexec.session", session)).exec(),
                    "the engine's close returned with the container of " + session + " still there");
        }
    }

    private boolean gone(String containerId, Duration within) throws InterruptedException {
        long deadline = System.nanoTime() + within.toNanos();
        while (System.nanoTime() < deadline) {
            try {
                docker.inspectContainerCmd(containerId).exec();
            } catch (NotFoundException e) {
                return true;
            }
            Thread.sleep(50);
        }
        return false;
    }

    @Test
    void anyImageWorksBecauseTheAgentIsStatic() {
        // The shell image has no Python and the node image no bash-only tools: the agent needs neither.
        try (SandboxSession session = engine.openSession("agentexec/node:bookworm", engine.defaultLimits(),
                engine.settings().docker().defaults())) {
            ExecutionResult r = session.execute(ExecutionRequest.of("javascript", "console.log(process.version)", engine.defaultLimits()));
            assertEquals(Verdict.OK, r.verdict(), r::toString);
            ExecutionResult noPython = session.execute(ExecutionRequest.of("python", "print(1)", engine.defaultLimits()));
            assertEquals(Verdict.RUNTIME_ERROR, noPython.verdict());
            assertEquals(127, noPython.exitCode());
            assertTrue(noPython.message().contains("cannot start python3"), noPython::message);
        }
    }

    @Test
    void aMissingImageIsASandboxErrorThatSaysHowToGetIt() {
        ExecutionResult r = engine.execute(ExecutionRequest.builder(engine.defaultLimits())
                .block("python", "print(1)").image("agentexec/does-not-exist:1").build());
        assertEquals(Verdict.SANDBOX_ERROR, r.verdict());
        assertTrue(r.message().contains("images/build.sh"), r::message);
    }

    /** What callers ask of a backend, without knowing which one it is (the agents, /readyz, /metrics). */
    @Test
    void capabilitiesAnswerWhateverTheBackend() {
        assertEquals(ImagePresence.PRESENT, engine.imagePresence("agentexec/python:bookworm"));
        assertEquals(ImagePresence.ABSENT, engine.imagePresence("agentexec/does-not-exist:1"));
        assertTrue(engine.warmPoolSizes().containsKey("agentexec/python:bookworm"), engine.warmPoolSizes()::toString);
        assertEquals(List.of(java.util.Optional.<String>empty()),
                engine.runtimeHealth().stream().map(RuntimeHealth::runtime).toList(), "the daemon's default runtime");
        SandboxEngine bwrap = Backends.bwrap();
        assertEquals(ImagePresence.UNKNOWN, bwrap.imagePresence("agentexec/does-not-exist:1"), "bwrap has no images");
        assertEquals(Map.of(), bwrap.warmPoolSizes());
        assertEquals(List.of(), bwrap.runtimeHealth());
    }

    @Test
    void aKilledContainerIsASandboxErrorNotAUserError() {
        SandboxSession session = engine.openSession("python", engine.defaultLimits());
        docker.removeContainerCmd(containerOf(session)).withForce(true).exec();
        ExecutionResult r = session.execute(ExecutionRequest.of("python", "print(1)", engine.defaultLimits()));
        assertEquals(Verdict.SANDBOX_ERROR, r.verdict(), r::toString);
        assertFalse(session.isUsable());
        session.close();
    }

    @Test
    void theWarmPoolRefillsAfterASessionIsTaken() throws InterruptedException {
        String image = "agentexec/python:bookworm";
        int target = engine.settings().docker().warmPoolSize();
        waitForPool(image, target);
        try (SandboxSession session = engine.openSession("python", engine.defaultLimits())) {
            assertEquals(Verdict.OK, session.execute(ExecutionRequest.of("python", "print(1)", engine.defaultLimits())).verdict());
            waitForPool(image, target);
        }
    }

    /** The pool holds at least its floor again (it may hold more while earlier tests' demand is recent). */
    private void waitForPool(String image, int target) throws InterruptedException {
        long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
        while (backend.warmPoolSizes().getOrDefault(image, 0) < target && System.nanoTime() < deadline) {
            Thread.sleep(50);
        }
        assertTrue(backend.warmPoolSizes().getOrDefault(image, 0) >= target, backend.warmPoolSizes()::toString);
    }

    @Test
    void theReaperRemovesContainersOfProcessesThatNoLongerRun() {
        String orphan = docker.createContainerCmd("agentexec/python:bookworm")
                .withEntrypoint("/bin/true")
                .withLabels(Map.of("io.agentexec.managed", "true", "io.agentexec.session", "orphan",
                        "io.agentexec.owner", hostName() + "/999999999/1"))
                .exec().getId();
        String foreign = docker.createContainerCmd("agentexec/python:bookworm")
                .withEntrypoint("/bin/true")
                .withLabels(Map.of("io.agentexec.managed", "true", "io.agentexec.session", "foreign",
                        "io.agentexec.owner", "some-other-node/1/1"))
                .exec().getId();
        try {
            assertTrue(backend.reapOrphans() >= 1);
            assertThrows(NotFoundException.class, () -> docker.inspectContainerCmd(orphan).exec());
            assertEquals(foreign, docker.inspectContainerCmd(foreign).exec().getId(), "another host's container is left alone");
            for (String live : backend.liveContainerIds()) {
                docker.inspectContainerCmd(live).exec(); // our own live containers survive
            }
        } finally {
            docker.removeContainerCmd(foreign).withForce(true).exec();
        }
    }

    private static String hostName() {
        try {
            return java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.net.UnknownHostException e) {
            return "localhost";
        }
    }
}
