package io.agentexec.sandbox.docker;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.exception.ConflictException;
import com.github.dockerjava.api.exception.NotFoundException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Removes stopped containers ({@code docker rm -f}, a large part of a one-off's cost) on a bounded pool, so that
 * whoever closed a session (a one-off's reply) does not wait for the daemon. Past the pool's queue, or once it is
 * closing, the calling thread removes the container itself: never an unbounded backlog.
 *
 * <p>A removal is daemon CPU that the runs on this machine go without, so removals are paced: at most
 * {@code removal.batch} begin in any {@code removal.interval} (back to back, then a pause), and none begins while
 * a caller waits for a container to be made (up to {@link #HOLD_LIMIT_NANOS}, so that removals always progress).
 * Once closing, removals go as fast as the daemon takes them.
 */
final class ContainerRemoval implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ContainerRemoval.class);
    /** The longest a removal is put off for callers waiting for a container: removals must not starve either. */
    private static final long HOLD_LIMIT_NANOS = TimeUnit.SECONDS.toNanos(5);
    private static final long HOLD_POLL_MILLIS = 20;

    private final DockerClient client;
    private final DockerBackendSettings.Removal settings;
    private final ThreadPoolExecutor pool;
    private volatile BooleanSupplier hold = () -> false;
    private volatile boolean closing;
    /** Guarded by this: the current batch's start and how many removals began in it. */
    private long batchStart;
    private int inBatch;

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

    /** Removals hold off while this says a caller waits for a container to be made. */
    void holdWhile(BooleanSupplier condition) {
        this.hold = condition;
    }

    /** Removes the container in the background, or here when the pool is full or closing. */
    void later(String containerId) {
        try {
            pool.execute(() -> {
                pace();
                now(containerId);
            });
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

    /** Waits for this removal's turn: callers waiting for a container first, then the batch's pace. */
    private void pace() {
        long holdUntil = System.nanoTime() + HOLD_LIMIT_NANOS;
        try {
            while (!closing && hold.getAsBoolean() && System.nanoTime() < holdUntil) {
                Thread.sleep(HOLD_POLL_MILLIS);
            }
            long interval = settings.interval().toNanos();
            if (interval == 0) {
                return;
            }
            synchronized (this) {
                long now = System.nanoTime();
                if (now - batchStart >= interval) {
                    batchStart = now;
                    inBatch = 0;
                } else if (inBatch >= settings.batch()) {
                    long wait = batchStart + interval - now;
                    while (wait > 0 && !closing) {
                        TimeUnit.NANOSECONDS.timedWait(this, wait);
                        wait = batchStart + interval - System.nanoTime();
                    }
                    batchStart = System.nanoTime();
                    inBatch = 0;
                }
                inBatch++;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Waits up to the configured close-wait for pending removals; what is left is the caller's to remove. */
    @Override
    public void close() {
        closing = true;
        synchronized (this) {
            notifyAll();
        }
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
