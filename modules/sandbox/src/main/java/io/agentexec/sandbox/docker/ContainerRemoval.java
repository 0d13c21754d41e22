package io.agentexec.sandbox.docker;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.exception.ConflictException;
import com.github.dockerjava.api.exception.NotFoundException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Removes stopped containers ({@code docker rm -f}, a large part of a one-off's cost) on a bounded pool, so that
 * whoever closed a session (a one-off's reply) does not wait for the daemon. Past the pool's queue, or once it is
 * closing, the calling thread removes the container itself: never an unbounded backlog.
 */
final class ContainerRemoval implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ContainerRemoval.class);

    private final DockerClient client;
    private final DockerBackendSettings.Removal settings;
    private final ThreadPoolExecutor pool;

    ContainerRemoval(DockerClient client, DockerBackendSettings.Removal settings) {
        this.client = client;
        this.settings = settings;
        this.pool = new ThreadPoolExecutor(settings.threads(), settings.threads(), 0, TimeUnit.MILLISECONDS,
                settings.queue() == 0 ? new SynchronousQueue<>() : new ArrayBlockingQueue<>(settings.queue()),
                r -> {
                    Thread t = new Thread(r, "agentexec-container-removal");
                    t.setDaemon(true);
                    return t;
                }, new ThreadPoolExecutor.AbortPolicy());
    }

    /** Removes the container in the background, or here when the pool is full or closing. */
    void later(String containerId) {
        try {
            pool.execute(() -> now(containerId));
        } catch (RejectedExecutionException e) {
            now(containerId);
        }
    }

    /** Removes the container (and its anonymous volumes) now; one already gone or going is no error. */
    void now(String containerId) {
        try {
            client.removeContainerCmd(containerId).withForce(true).withRemoveVolumes(true).exec();
        } catch (NotFoundException e) {
            // already gone
        } catch (ConflictException e) {
            // removal already in progress
        } catch (RuntimeException e) {
            log.warn("cannot remove container {}: {}", containerId, e.getMessage());
        }
    }

    /** Waits up to the configured close-wait for pending removals; what is left is the caller's to remove. */
    @Override
    public void close() {
        pool.shutdown();
        try {
            if (!pool.awaitTermination(settings.closeWait().toMillis(), TimeUnit.MILLISECONDS)) {
                log.warn("container removals still pending after {}; removing what is left directly",
                        settings.closeWait());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
