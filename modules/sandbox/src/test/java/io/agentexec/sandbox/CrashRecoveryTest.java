package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.exception.NotFoundException;
import io.agentexec.sandbox.docker.DockerBackend;
import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** A JVM killed with SIGKILL cannot clean up: its sandbox stops by itself and the next start removes it. */
class CrashRecoveryTest {
    @Test
    void aKilledJvmsContainerStopsAndIsReapedAtTheNextStart() throws Exception {
        String java = System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
        Process holder = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"),
                SessionHolderMain.class.getName()).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        String sessionId;
        try (BufferedReader out = new BufferedReader(new InputStreamReader(holder.getInputStream(), StandardCharsets.UTF_8))) {
            String line;
            do {
                line = out.readLine();
            } while (line != null && !line.startsWith("SESSION "));
            assertTrue(line != null, "the holder JVM opened a session");
            sessionId = line.substring("SESSION ".length());
        }
        DockerClient docker = DockerBackend.client();
        String container = docker.listContainersCmd().withShowAll(true)
                .withLabelFilter(Map.of("io.agentexec.session", sessionId)).exec().get(0).getId();
        assertTrue(docker.inspectContainerCmd(container).exec().getState().getRunning());

        holder.destroyForcibly();
        assertTrue(holder.waitFor(30, TimeUnit.SECONDS));

        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (Boolean.TRUE.equals(docker.inspectContainerCmd(container).exec().getState().getRunning())
                && System.nanoTime() < deadline) {
            Thread.sleep(100);
        }
        assertFalse(docker.inspectContainerCmd(container).exec().getState().getRunning(),
                "the agent saw its stdin close and the container stopped: no process outlives the JVM");

        // A fresh engine reaps at start-up; when this JVM's engine had already started, reap as it would.
        ((DockerBackend) Backends.docker().backend()).reapOrphans();
        assertThrows(NotFoundException.class, () -> docker.inspectContainerCmd(container).exec());
        assertEquals(List.of(), docker.listContainersCmd().withShowAll(true)
                .withLabelFilter(Map.of("io.agentexec.session", sessionId)).exec());
        docker.close();
    }
}
