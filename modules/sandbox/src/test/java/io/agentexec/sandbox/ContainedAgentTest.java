package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.sandbox.agent.AgentBinary;
import io.agentexec.sandbox.agent.AgentChannel;
import io.agentexec.sandbox.agent.AgentException;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.agent.RunOutcome;
import io.agentexec.sandbox.agent.RunSpec;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The agent binary itself, started directly in a container with the docker CLI (no engine in between): a sandbox's
 * agent ({@code serve --contained}) must never run user code as uid 0 or gid 0, whatever user it was started as.
 */
class ContainedAgentTest {
    private static final String IMAGE = "agentexec/shell:bookworm";
    private static Path dir;
    private static Path agent;

    @BeforeAll
    static void writeAgent() throws IOException {
        dir = Files.createTempDirectory("agentexec-contained-test");
        agent = dir.resolve("agentexec-agent");
        Files.write(agent, AgentBinary.load().content());
        Files.setPosixFilePermissions(agent, PosixFilePermissions.fromString("r-xr-xr-x"));
    }

    @AfterAll
    static void removeAgent() throws IOException {
        Files.deleteIfExists(agent);
        Files.deleteIfExists(dir);
    }

    private static RunSpec idCommand() {
        return new RunSpec(List.of("sh", "-c", "echo ran as $(id -u):$(id -g)"), Map.of("PATH", "/usr/bin:/bin"), "/tmp",
                new byte[0], 10_000, 4096, 4096, 1 << 20, OptionalLong.empty());
    }

    /** Starts the agent in a fresh container as {@code user}, talks the protocol to it, then removes the container. */
    private static <T> T withAgentAs(String user, Function<AgentChannel, T> conversation) throws Exception {
        String name = "agentexec-contained-test-" + UUID.randomUUID().toString().substring(0, 12);
        Process docker = new ProcessBuilder("docker", "run", "--rm", "-i", "--name", name, "--network", "none",
                "--user", user, "-v", agent + ":/agentexec-agent:ro", IMAGE,
                "/agentexec-agent", "serve", "--contained", "--workspace", "/tmp")
                .redirectError(ProcessBuilder.Redirect.INHERIT).start();
        AgentChannel channel = new AgentChannel(docker.getOutputStream());
        Thread pump = new Thread(() -> {
            byte[] buf = new byte[65536];
            try (InputStream in = docker.getInputStream()) {
                int n;
                while ((n = in.read(buf)) > 0) {
                    channel.feed(buf, 0, n);
                }
            } catch (IOException ignored) {
                // the container ended
            }
            channel.endOfStream("docker run ended");
        });
        pump.setDaemon(true);
        pump.start();
        try {
            channel.awaitHello(Duration.ofSeconds(60));
            return conversation.apply(channel);
        } finally {
            channel.close();
            if (!docker.waitFor(30, TimeUnit.SECONDS)) {
                docker.destroyForcibly();
            }
            new ProcessBuilder("docker", "rm", "-f", name).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start().waitFor(30, TimeUnit.SECONDS);
        }
    }

    @ParameterizedTest(name = "--user {0}")
    @ValueSource(strings = {"0", "00", "0:0", "root", "65534:0"})
    void aContainedAgentRefusesToRunCodeAsRoot(String user) throws Exception {
        String refusal = withAgentAs(user, channel -> {
            AgentException e = assertThrows(AgentException.class,
                    () -> channel.run(idCommand(), OutputListener.NONE, Duration.ofSeconds(10)),
                    "the agent ran code as " + user);
            return e.getMessage();
        });
        assertTrue(refusal.contains("uid 0 or gid 0"), refusal);
    }

    @Test
    void aContainedAgentRunsCodeAsAnUnprivilegedUser() throws Exception {
        RunOutcome run = withAgentAs("65534:65534",
                channel -> channel.run(idCommand(), OutputListener.NONE, Duration.ofSeconds(10)));
        assertEquals(0, run.exitCode());
        assertEquals("ran as 65534:65534\n", new String(run.stdout(), StandardCharsets.UTF_8));
    }
}
