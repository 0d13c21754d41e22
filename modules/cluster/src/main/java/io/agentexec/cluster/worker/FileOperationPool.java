package io.agentexec.cluster.worker;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * The worker's pool for file operations, apart from the runs' threads: {@code threads} run at once,
 * at most {@code queue} more wait, and anything past that is refused at once. The bound is counted
 * here, exactly: a {@link ThreadPoolExecutor} with a bounded queue refuses early under a burst (a task
 * offered before an idle thread has taken the one before it counts against the queue).
 */
public final class FileOperationPool implements AutoCloseable {
    private final int threads;
    private final int queue;
    private final Semaphore places;
    private final ExecutorService executor;

    public FileOperationPool(int threads, int queue, ThreadFactory threadFactory) {
        this.threads = threads;
        this.queue = queue;
        this.places = new Semaphore(threads + queue);
        this.executor = new ThreadPoolExecutor(threads, threads, 0, TimeUnit.MILLISECONDS, new LinkedBlockingQueue<>(),
                threadFactory);
    }

    /** Runs {@code task} on a file thread, now or after those ahead of it; false (nothing done) when all places are taken. */
    public boolean trySubmit(Runnable task) {
        if (!places.tryAcquire()) {
            return false;
        }
        try {
            executor.execute(() -> {
                try {
                    task.run();
                } finally {
                    places.release();
                }
            });
            return true;
        } catch (RejectedExecutionException e) {
            places.release(); // shut down: the node is stopping
            return false;
        }
    }

    public int threads() {
        return threads;
    }

    public int queue() {
        return queue;
    }

    /** Interrupts the file threads and drops what waits: the node is stopping. */
    @Override
    public void close() {
        executor.shutdownNow();
    }
}
