package io.agentexec.gateway;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.exception.NotFoundException;
import com.github.dockerjava.api.model.Container;
import io.agentexec.sandbox.docker.DockerBackend;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;

/**
 * Looks at the real Docker daemon: which agentexec container runs a process with a given marker in
 * its command line (tests run {@code sleep MARKER}, a unique duration), whether it still exists.
 * Read-only: it never removes a container.
 */
final class DockerProbe {
    /** Shorter than the runs the tests start (sleep 59.x s), so a run that merely ended cannot pass for a cancelled one. */
    private static final Duration WAIT = Duration.ofSeconds(30);
    private final DockerClient docker = DockerBackend.client();

    /** A unique {@code sleep} argument: seconds.digits, about a minute. */
    static String marker() {
        return "59." + Long.toString(Math.abs(UUID.randomUUID().getMostSignificantBits()) % 1_000_000_000L);
    }

    Optional<String> containerRunning(String marker) {
        for (Container c : docker.listContainersCmd().withLabelFilter(Map.of("io.agentexec.managed", "true")).exec()) {
            if (runs(c.getId(), marker)) {
                return Optional.of(c.getId());
            }
        }
        return Optional.empty();
    }

    boolean runs(String containerId, String marker) {
        try {
            String[][] processes = docker.topContainerCmd(containerId).exec().getProcesses();
            return processes != null && Arrays.stream(processes).anyMatch(p -> String.join(" ", p).contains("sleep " + marker));
        } catch (RuntimeException e) {
            // gone between the listing and the look, or not running
            return false;
        }
    }

    boolean exists(String containerId) {
        try {
            docker.inspectContainerCmd(containerId).exec();
            return true;
        } catch (NotFoundException e) {
            return false;
        }
    }

    /** Waits (up to 30 s) for the container running {@code sleep marker} to appear. */
    String awaitContainerRunning(String marker) throws InterruptedException {
        Instant deadline = Instant.now().plus(WAIT);
        while (Instant.now().isBefore(deadline)) {
            Optional<String> found = containerRunning(marker);
            if (found.isPresent()) {
                return found.get();
            }
            Thread.sleep(200);
        }
        throw new AssertionError("no container runs sleep " + marker);
    }

    /** Waits (up to 30 s) until {@code condition} holds; false if it never did. */
    static boolean eventually(java.util.function.BooleanSupplier condition) throws InterruptedException {
        Instant deadline = Instant.now().plus(WAIT);
        while (Instant.now().isBefore(deadline)) {
            if (condition.getAsBoolean()) {
                return true;
            }
            Thread.sleep(200);
        }
        return condition.getAsBoolean();
    }
}
