package io.agentexec.sandbox.docker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.command.CreateContainerCmd;
import com.github.dockerjava.api.model.HostConfig;
import com.github.dockerjava.api.model.LogConfig;
import com.github.dockerjava.api.model.Mount;
import com.github.dockerjava.api.model.MountType;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** What a session's container is created with, from the spec alone: no daemon is asked. */
class ContainerSpecTest {
    private static final DockerBackendSettings SETTINGS = EngineSettings.load().docker();
    private static final Limits LIMITS = new Limits(Duration.ofSeconds(30), 256L << 20, 0.5, 64, 1 << 20, 32L << 20);
    private static final String OWNER = "host/42/1700000000000";

    private static ContainerSpec spec(SandboxOptions options) {
        return ContainerSpec.forSession("sbx-1", "agentexec/python:bookworm", LIMITS, options, SETTINGS,
                "agentexec-agent-0123456789abcdef", OWNER);
    }

    @Test
    void theDefaultsMakeAHardenedContainer() {
        ContainerSpec spec = spec(SETTINGS.defaults());
        HostConfig host = spec.hostConfig();
        assertEquals("none", host.getNetworkMode());
        assertTrue(host.getReadonlyRootfs());
        assertEquals("[ALL]", Arrays.toString(host.getCapDrop()));
        assertEquals(List.of("no-new-privileges"), host.getSecurityOpts());
        assertEquals(256L << 20, host.getMemory());
        assertEquals(256L << 20, host.getMemorySwap(), "swap equal to memory: no swap at all");
        assertEquals(100_000L, host.getCpuPeriod());
        assertEquals(50_000L, host.getCpuQuota());
        assertEquals(64L, host.getPidsLimit());
        assertEquals(LogConfig.LoggingType.NONE, host.getLogConfig().getType(), "no log of the sandbox's output on the host");
        assertFalse(host.getInit(), "the agent is pid 1 and reaps zombies itself");
        assertNull(host.getRuntime(), "no runtime named: the daemon's default");
        assertEquals("rw,nosuid,nodev,size=64m", host.getTmpFs().get("/tmp"));
        assertEquals("rw,nosuid,nodev,exec,size=" + (32L << 20) + ",uid=65534,gid=65534,mode=0700",
                host.getTmpFs().get("/workspace"));
        Mount agent = host.getMounts().get(0);
        assertEquals(List.of(MountType.VOLUME, "agentexec-agent-0123456789abcdef", "/.agentexec", true),
                List.of(agent.getType(), agent.getSource(), agent.getTarget(), agent.getReadOnly()));
        assertEquals(1, host.getMounts().size(), "nothing of the host but the agent's volume");

        assertEquals("65534:65534", spec.user());
        assertEquals("/workspace", spec.workingDir());
        assertEquals(List.of("/.agentexec/agentexec-agent", "serve", "--contained", "--workspace", "/workspace"),
                spec.entrypoint());
        assertEquals(Map.of("io.agentexec.managed", "true", "io.agentexec.session", "sbx-1", "io.agentexec.owner", OWNER),
                spec.labels());
        assertEquals(Optional.empty(), spec.name(), "Docker names it");
    }

    @Test
    void optionsAndRuntimeReachTheCreateCommand() {
        SandboxOptions options = SETTINGS.defaults().withTmpfs("/scratch", "rw,size=8m").withUser("1000:2000")
                .withRuntime(Optional.of("runsc")).withNamePrefix(Optional.of("ag2_code_executor"))
                .withNetworkMode("bridge");
        ContainerSpec spec = spec(options);
        HostConfig host = spec.hostConfig();
        assertEquals("runsc", host.getRuntime());
        assertEquals(4096L, host.getPidsLimit(), "gVisor's host cgroup gets runtime-host-pids; the user's limit is applied inside");
        assertEquals("bridge", host.getNetworkMode());
        assertEquals("rw,size=8m", host.getTmpFs().get("/scratch"));
        assertTrue(host.getTmpFs().get("/workspace").endsWith(",uid=1000,gid=2000,mode=0700"), host.getTmpFs()::toString);
        assertEquals(Optional.of("ag2_code_executor-sbx-1"), spec.name());

        DockerClient client = DockerClients.create(); // makes the command only; nothing is sent to a daemon
        try {
            CreateContainerCmd cmd = spec.command(client);
            assertEquals("agentexec/python:bookworm", cmd.getImage());
            assertEquals("ag2_code_executor-sbx-1", cmd.getName());
            assertEquals("1000:2000", cmd.getUser());
            assertTrue(cmd.isStdinOpen() && cmd.isStdInOnce(), "stdin held open, once: the agent ends when this JVM does");
            assertFalse(cmd.isTty());
            assertEquals(List.of("PATH=" + ContainerSpec.CONTAINER_PATH, "LANG=C.UTF-8"), Arrays.asList(cmd.getEnv()));
            assertEquals(host, cmd.getHostConfig());
        } finally {
            DockerClients.close(client);
        }
    }

    @Test
    void limitsChangedBetweenRunsKeepThePeriodAndAQuotaTheKernelTakes() {
        ContainerSpec.Resources tiny = ContainerSpec.Resources.of(LIMITS.withCpus(0.001), Optional.empty(), SETTINGS);
        assertEquals(100_000L, tiny.cpuPeriodMicros());
        assertEquals(1000L, tiny.cpuQuotaMicros(), "1 ms per period at least");
        ContainerSpec.Resources two = ContainerSpec.Resources.of(LIMITS.withCpus(2).withPids(99), Optional.empty(), SETTINGS);
        assertEquals(List.of(200_000L, 99L, 256L << 20, 256L << 20),
                List.of(two.cpuQuotaMicros(), two.pidsLimit(), two.memoryBytes(), two.memorySwapBytes()));
    }

    @Test
    void aWorkspaceOfANonNumericUserIsStickyAndWorldWritable() {
        assertEquals("rw,nosuid,nodev,exec,size=10,mode=1777", ContainerSpec.workspaceTmpfsOptions("nobody", 10));
        assertEquals("rw,nosuid,nodev,exec,size=10,uid=7,gid=7,mode=0700", ContainerSpec.workspaceTmpfsOptions("7", 10));
    }
}
