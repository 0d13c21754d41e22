package io.agentexec.cluster.health;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.apache.pekko.actor.ActorSystem;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The worker's readiness check (/ready of pekko-management, registered in reference.conf) against the real Docker
 * daemon: ready while the daemon answers and holds the configured images; not ready, naming the image, when one is
 * missing; not ready when the daemon does not answer; always ready on a node without the worker role.
 */
class WorkerReadinessTest {
    private static final Duration WAIT = Duration.ofMinutes(1);

    private static Config config(String roles, String image) {
        return ConfigFactory.parseString("""
                pekko.actor.provider = local
                agentexec.cluster.roles = "%s"
                agentexec.sandbox.backend = docker
                agentexec.sandbox.docker.warm-pool.size = 0
                agentexec.cluster.worker.readiness.interval = 200ms
                agentexec.sandbox.languages = [{name = python, image = "%s", command = [python3, "{file}"], extension = py}]
                """.formatted(roles, image)).withFallback(ConfigFactory.load()).resolve();
    }

    private static Optional<String> settle(WorkerReadiness check, BooleanSupplier done) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (System.nanoTime() < deadline && !done.getAsBoolean()) {
            Thread.sleep(100);
        }
        return check.problem();
    }

    private static boolean ready(WorkerReadiness check) {
        try {
            return check.get().toCompletableFuture().get(1, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void registeredAsAManagementReadinessCheck() {
        assertEquals(WorkerReadiness.class.getName(),
                ConfigFactory.load().getString("pekko.management.health-checks.readiness-checks.agentexec-worker"));
    }

    @Test
    void readyOnlyWhileTheDaemonHoldsTheImagesAndAlwaysOnAGatewayNode() throws Exception {
        Assumptions.assumeTrue(io.agentexec.sandbox.docker.DockerBackend.daemonAnswers(
                io.agentexec.sandbox.docker.DockerBackend.client()), "SKIPPED: no Docker daemon answers here");
        ActorSystem system = ActorSystem.create("readiness", config("worker", "agentexec/python:bookworm"));
        try {
            WorkerReadiness present = new WorkerReadiness(system);
            assertEquals(Optional.empty(), settle(present, () -> present.problem().isEmpty()));
            assertTrue(ready(present));
        } finally {
            system.terminate();
        }
        system = ActorSystem.create("readiness", config("worker", "agentexec/no-such-image-readiness-test:none"));
        try {
            WorkerReadiness missing = new WorkerReadiness(system);
            Optional<String> problem = settle(missing, () -> missing.problem().filter(p -> p.contains("missing")).isPresent());
            assertTrue(problem.orElse("").contains("agentexec/no-such-image-readiness-test:none"), problem.toString());
            assertFalse(ready(missing));
        } finally {
            system.terminate();
        }
        system = ActorSystem.create("readiness", config("gateway", "agentexec/no-such-image-readiness-test:none"));
        try {
            assertTrue(ready(new WorkerReadiness(system)), "a gateway node does not depend on a Docker daemon");
        } finally {
            system.terminate();
        }
    }

    @Test
    void notReadyWhileTheDaemonDoesNotAnswer() throws Exception {
        // docker-java reads DOCKER_HOST from system properties over the environment.
        String before = System.getProperty("DOCKER_HOST");
        System.setProperty("DOCKER_HOST", "unix:///run/agentexec-readiness-test-no-daemon.sock");
        ActorSystem system = ActorSystem.create("readiness", config("worker", "agentexec/python:bookworm"));
        try {
            WorkerReadiness check = new WorkerReadiness(system);
            Optional<String> problem = settle(check, () -> check.problem().filter(p -> p.contains("does not answer")).isPresent());
            assertTrue(problem.orElse("").contains("does not answer"), problem.toString());
            assertFalse(ready(check));
        } finally {
            system.terminate();
            if (before == null) {
                System.clearProperty("DOCKER_HOST");
            } else {
                System.setProperty("DOCKER_HOST", before);
            }
        }
    }
}
