package io.agentexec.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;

/**
 * The dind-sidecar worker model on one machine: the agentexec/dind image's daemon, started privileged with its socket
 * on a shared directory (the pod's shared volume), gets the sandbox images from the node image's `load-images`
 * (running as the node's unprivileged user, reaching the socket through its group), and runs a sandbox image.
 * Skipped, with the daemon's reason printed, where this machine's Docker refuses privileged containers (as here:
 * runc cannot apply the full capability set inside this machine's own sandbox).
 */
class DindImageTest {
    private static String docker(Duration timeout, String... args) {
        List<String> command = new ArrayList<>(List.of("docker"));
        command.addAll(List.of(args));
        Repo.Result r = Repo.run(timeout, command);
        assertEquals(0, r.exitCode(), String.join(" ", command) + ": " + r.stdout() + r.stderr());
        return r.stdout().strip();
    }

    @Test
    void theDindDaemonGetsTheSandboxImagesFromTheNodeImageAndRunsThem() throws Exception {
        Repo.Result version;
        try {
            version = Repo.run(Duration.ofSeconds(60), List.of("docker", "version", "--format", "{{.Server.Version}}"));
        } catch (RuntimeException e) {
            version = new Repo.Result(-1, "", e.getMessage());
        }
        Skips.assumeTrue(version.exitCode() == 0, "SKIPPED: Docker is missing: " + version.stderr().strip());
        Repo.Result privileged = Repo.run(Duration.ofMinutes(2), List.of("docker", "run", "--rm", "--privileged",
                "--network", "none", "--entrypoint", "/bin/true", "agentexec/shell:bookworm"));
        Skips.assumeTrue(privileged.exitCode() == 0, "SKIPPED: this machine's Docker cannot start a privileged "
                + "container, which a Docker daemon in a container needs: " + privileged.stderr().strip());

        Repo.Result build = Repo.run(Duration.ofMinutes(25), List.of("images/build.sh", "agentexec-node", "dind"));
        assertEquals(0, build.exitCode(), "images/build.sh agentexec-node dind: " + build.stdout() + build.stderr());
        String node = "agentexec/node:" + Repo.version();
        String dind = "agentexec/dind:" + Repo.version();
        Path socketDir = Files.createTempDirectory(Path.of("/tmp"), "agentexec-deploytest-dind");
        String name = "agentexec-deploytest-dind-" + UUID.randomUUID();
        String socket = "unix:///run/agentexec-docker/docker.sock";
        try {
            docker(Duration.ofMinutes(2), "run", "-d", "--name", name, "--privileged",
                    "-v", socketDir + ":/run/agentexec-docker", "-v", "/var/lib/docker", dind);
            long deadline = System.nanoTime() + Duration.ofMinutes(2).toNanos();
            while (Repo.run(Duration.ofMinutes(1), List.of("docker", "exec", name, "docker", "--host", socket, "version"))
                    .exitCode() != 0) {
                assertTrue(System.nanoTime() < deadline, "the dind daemon did not answer within 2 minutes: "
                        + Repo.run(Duration.ofMinutes(1), List.of("docker", "logs", "--tail", "30", name)));
                Thread.sleep(500);
            }
            String loaded = docker(Duration.ofMinutes(10), "run", "--rm", "--network", "none",
                    "-v", socketDir + ":/run/agentexec-docker", "-e", "DOCKER_HOST=" + socket, node, "load-images");
            assertTrue(loaded.contains("agentexec/python:bookworm loaded"), loaded);
            String out = docker(Duration.ofMinutes(2), "exec", name, "docker", "--host", socket, "run", "--rm",
                    "--network", "none", "agentexec/python:bookworm", "python3", "-c", "print(6 * 7)");
            assertEquals("42", out);
        } finally {
            Repo.run(Duration.ofMinutes(2), List.of("docker", "rm", "-f", "-v", name));
            try (var files = Files.list(socketDir)) {
                for (Path p : files.toList()) {
                    Files.deleteIfExists(p);
                }
            }
            Files.deleteIfExists(socketDir);
        }
    }
}
