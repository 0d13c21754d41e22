package io.agentexec.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A configuration file that is not there is a start-up error naming its path, in every way a command is given one
 * (issue 12: a wrong path silently fell back to the defaults, and a Kubernetes pod formed a cluster of its own). Each
 * case runs {@code bin/agentexec}'s main class in a JVM of its own, as a user or a pod does; none may start anything.
 */
class MissingConfigFileTest {
    /** Long enough for a loaded machine to start a JVM and refuse; a node that starts instead never exits by itself. */
    private static final long WAIT_SECONDS = 120;

    private record Exit(int code, String stdout, String stderr) { }

    /**
     * Runs the CLI. The system properties keep a node that starts anyway (the fault) off this machine's fixed ports,
     * its data directory and its keys file.
     */
    private static Exit run(Map<String, String> env, List<String> jvmOptions, String... args) throws Exception {
        Path dir = Files.createTempDirectory("agentexec-missing-config");
        String java = System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
        List<String> command = new ArrayList<>(List.of(java, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dagentexec.gateway.port=0", "-Dagentexec.gateway.metrics.port=0", "-Dagentexec.gateway.auth.mode=none",
                "-Dpekko.remote.artery.canonical.port=0", "-Dagentexec.sandbox.docker.warm-pool.size=0",
                "-Dagentexec.cluster.persistence.url=jdbc:h2:mem:missing-config;DB_CLOSE_DELAY=-1;DATABASE_TO_UPPER=false"));
        command.addAll(jvmOptions);
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), AgentexecMain.class.getName()));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command).directory(dir.toFile())
                .redirectOutput(dir.resolve("out").toFile()).redirectError(dir.resolve("err").toFile());
        builder.environment().remove("AGENTEXEC_CONFIG");
        builder.environment().putAll(env);
        Process process = builder.start();
        try {
            boolean exited = process.waitFor(WAIT_SECONDS, TimeUnit.SECONDS);
            String stderr = Files.readString(dir.resolve("err"), StandardCharsets.UTF_8);
            assertTrue(exited, () -> String.join(" ", args) + " did not stop within " + WAIT_SECONDS
                    + " s (it started with another configuration): " + stderr);
            return new Exit(process.exitValue(), Files.readString(dir.resolve("out"), StandardCharsets.UTF_8), stderr);
        } finally {
            process.destroyForcibly();
            process.waitFor(30, TimeUnit.SECONDS);
        }
    }

    private static void assertRefusedNaming(Exit exit, String path, String how) {
        assertEquals(2, exit.code(), () -> how + ": " + exit.stderr());
        assertEquals("", exit.stdout(), how);
        assertTrue(exit.stderr().startsWith("agentexec: "), () -> how + ": " + exit.stderr());
        assertTrue(exit.stderr().contains(path), () -> how + " names the missing file: " + exit.stderr());
        assertFalse(exit.stderr().contains("Exception"), () -> how + ": one line, no stack trace: " + exit.stderr());
        assertEquals(1, exit.stderr().strip().lines().count(), () -> how + ": " + exit.stderr());
    }

    @Test
    void serveWithAFileThatIsNotThereStartsNothing(@TempDir Path dir) throws Exception {
        String missing = dir.resolve("node.conf").toString();
        assertRefusedNaming(run(Map.of(), List.of(), "serve", missing), missing, "serve FILE");
        assertRefusedNaming(run(Map.of(), List.of(), "serve", "--config", missing), missing, "serve --config FILE");
    }

    @Test
    void theConfigOptionOfLocalCommandsMustNameAFile(@TempDir Path dir) throws Exception {
        String missing = dir.resolve("engine.conf").toString();
        assertRefusedNaming(run(Map.of(), List.of(), "languages", "--config", missing), missing, "languages --config");
        assertRefusedNaming(run(Map.of(), List.of(), "exec", "--config", missing, "--language", "python", "-"), missing,
                "exec --config");
        assertRefusedNaming(run(Map.of(), List.of(), "chat", "--config", missing), missing, "chat --config");
    }

    @Test
    void theEnvironmentVariableMustNameAFile(@TempDir Path dir) throws Exception {
        String missing = dir.resolve("from-env.conf").toString();
        assertRefusedNaming(run(Map.of("AGENTEXEC_CONFIG", missing), List.of(), "languages"), missing, "AGENTEXEC_CONFIG");
        assertRefusedNaming(run(Map.of("AGENTEXEC_CONFIG", missing), List.of(), "serve"), missing, "AGENTEXEC_CONFIG serve");
    }

    @Test
    void theConfigFileSystemPropertyMustNameAFile(@TempDir Path dir) throws Exception {
        String missing = dir.resolve("from-property.conf").toString();
        assertRefusedNaming(run(Map.of(), List.of("-Dconfig.file=" + missing), "languages"), missing, "-Dconfig.file");
    }

    /** config/kubernetes.conf includes cluster.conf: without it the pod must not start as a one-node cluster. */
    @Test
    void anIncludedFileThatIsNotThereIsAnErrorToo(@TempDir Path dir) throws IOException, Exception {
        Path kubernetes = dir.resolve("kubernetes.conf");
        Files.copy(repositoryFile("config/kubernetes.conf"), kubernetes);
        String missing = dir.resolve("cluster.conf").toString();
        assertRefusedNaming(run(Map.of(), List.of("-Dconfig.file=" + kubernetes), "languages"), missing,
                "an include of a missing file");
        assertRefusedNaming(run(Map.of(), List.of(), "languages", "--config", kubernetes.toString()), missing,
                "an include of a missing file (--config)");
    }

    private static Path repositoryFile(String relative) {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            if (Files.exists(dir.resolve(relative))) {
                return dir.resolve(relative);
            }
        }
        throw new AssertionError(relative + " not found above " + Path.of("").toAbsolutePath());
    }
}
