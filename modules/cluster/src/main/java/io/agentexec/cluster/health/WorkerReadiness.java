package io.agentexec.cluster.health;

import com.github.dockerjava.api.DockerClient;
import com.typesafe.config.Config;
import io.agentexec.cluster.ClusterSettings;
import io.agentexec.cluster.NodeRole;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.docker.DockerBackend;
import io.agentexec.sandbox.language.Language;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.apache.pekko.actor.ActorSystem;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A pekko-management readiness check (pekko.management.health-checks.readiness-checks.agentexec-worker): a node
 * with the worker role running sandboxes in Docker is ready only while its Docker daemon answers and holds the
 * images its languages and warm pool name. A pod whose daemon is gone, or whose images were never loaded, thus
 * leaves the Service endpoints and fails its readinessProbe (/ready) instead of failing every run sent to it.
 *
 * <p>The daemon is asked on a thread of this check every {@code agentexec.cluster.worker.readiness.interval}, and
 * {@link #get()} answers the last outcome at once: pekko-management gives a check 1 s (its check-timeout), less than
 * a busy daemon may take. Other nodes (no worker role, or a backend other than docker) are always ready as far as
 * this check goes.
 */
public final class WorkerReadiness implements Supplier<CompletionStage<Boolean>> {
    private static final Logger log = LoggerFactory.getLogger(WorkerReadiness.class);

    private final boolean applies;
    private final List<String> images;
    private final AtomicReference<String> problem = new AtomicReference<>("not checked yet");
    private final ScheduledExecutorService checker;

    public WorkerReadiness(ActorSystem system) {
        Config config = system.settings().config();
        ClusterSettings cluster = ClusterSettings.fromConfig(config);
        String backend = config.getString("agentexec.sandbox.backend");
        this.applies = cluster.has(NodeRole.WORKER) && backend.equals("docker")
                && config.getBoolean("agentexec.cluster.worker.readiness.enabled");
        if (!applies) {
            this.images = List.of();
            this.checker = null;
            problem.set(null);
            return;
        }
        EngineSettings engine = EngineSettings.fromConfig(config);
        TreeSet<String> wanted = new TreeSet<>();
        engine.languages().all().stream().map(Language::image).forEach(wanted::add);
        if (engine.docker().warmPoolSize() > 0) {
            wanted.addAll(engine.docker().warmImages());
        }
        this.images = List.copyOf(wanted);
        Duration interval = config.getDuration("agentexec.cluster.worker.readiness.interval");
        this.checker = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "agentexec-worker-readiness");
            t.setDaemon(true);
            return t;
        });
        DockerClient client = DockerBackend.client();
        checker.scheduleWithFixedDelay(() -> check(client), 0, interval.toMillis(), TimeUnit.MILLISECONDS);
        system.registerOnTermination(checker::shutdownNow);
    }

    private void check(DockerClient client) {
        String found;
        try {
            if (!DockerBackend.daemonAnswers(client)) {
                found = "the Docker daemon does not answer (DOCKER_HOST)";
            } else {
                List<String> missing = new ArrayList<>();
                for (String image : images) {
                    try {
                        client.inspectImageCmd(image).exec();
                    } catch (RuntimeException e) {
                        missing.add(image);
                    }
                }
                found = missing.isEmpty() ? null : "images missing from the Docker daemon: " + String.join(", ", missing)
                        + " (agentexec load-images, or images/build.sh)";
            }
        } catch (RuntimeException e) {
            found = "checking the Docker daemon failed: " + e;
        }
        String before = problem.getAndSet(found);
        if (found == null && before != null) {
            log.info("worker ready: the Docker daemon answers and holds {}", images);
        } else if (found != null && !found.equals(before)) {
            log.warn("worker not ready: {}", found);
        }
    }

    /** Why the worker is not ready, if it is not. */
    public java.util.Optional<String> problem() {
        return java.util.Optional.ofNullable(problem.get());
    }

    @Override
    public CompletionStage<Boolean> get() {
        return CompletableFuture.completedFuture(problem.get() == null);
    }
}
