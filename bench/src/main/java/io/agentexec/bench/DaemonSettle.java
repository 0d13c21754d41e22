package io.agentexec.bench;

import com.github.dockerjava.api.DockerClient;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** Waits for the daemon to finish with this JVM's sandbox containers: none left that is not running (being removed). */
final class DaemonSettle {
    private DaemonSettle() {
    }

    /**
     * Waits until no managed container whose owner label names {@code owner} ({@code /PID/}) is in any state but
     * running, at most {@code limitMs}; returns the seconds it took.
     */
    static double settle(DockerClient docker, String owner, long limitMs) throws InterruptedException {
        long start = System.nanoTime();
        while (System.nanoTime() - start < TimeUnit.MILLISECONDS.toNanos(limitMs)) {
            long pending = docker.listContainersCmd().withShowAll(true)
                    .withLabelFilter(Map.of("io.agentexec.managed", "true")).exec().stream()
                    .filter(c -> c.getLabels().getOrDefault("io.agentexec.owner", "").contains(owner))
                    .filter(c -> !"running".equals(c.getState()))
                    .count();
            if (pending == 0) {
                break;
            }
            Thread.sleep(100);
        }
        return (System.nanoTime() - start) / 1e9;
    }
}
