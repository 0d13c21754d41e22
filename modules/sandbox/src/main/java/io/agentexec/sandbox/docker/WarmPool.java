package io.agentexec.sandbox.docker;

import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Started containers kept ready per warm image, so that opening a session costs no container start. Only sessions that
 * ask for nothing fixed at creation come from it (the default options, the pool's workspace size); memory, CPU and
 * pids are changed in place when one is taken. Taking one starts making its replacement.
 */
final class WarmPool implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(WarmPool.class);
    /** Containers made at once: the pool refills in the background without crowding out the sessions' own. */
    private static final int REFILL_THREADS = 2;
    /** How long closing waits for creations in flight (interrupting docker-java mid-call can orphan a container). */
    private static final long CLOSE_WAIT_SECONDS = 30;

    private final DockerBackendSettings settings;
    private final ContainerLauncher launcher;
    private final BooleanSupplier runtimeUsable;
    private final Map<String, ConcurrentLinkedDeque<DockerSession>> pools = new ConcurrentHashMap<>();
    private final Map<String, AtomicInteger> refilling = new ConcurrentHashMap<>();
    private final ExecutorService refiller;
    private volatile boolean closed;

    /** @param runtimeUsable false while the default runtime is known to be unhealthy: no container is made then */
    WarmPool(DockerBackendSettings settings, ContainerLauncher launcher, BooleanSupplier runtimeUsable) {
        this.settings = settings;
        this.launcher = launcher;
        this.runtimeUsable = runtimeUsable;
        this.refiller = Executors.newFixedThreadPool(REFILL_THREADS, r -> {
            Thread t = new Thread(r, "agentexec-warm-pool");
            t.setDaemon(true);
            return t;
        });
    }

    /** Starts filling the pool of every warm image. */
    void fill() {
        settings.warmImages().forEach(this::refill);
    }

    /** A session can come from the pool when it asks for nothing that is fixed at container creation. */
    boolean serves(String image, Limits limits, SandboxOptions options) {
        return settings.warmPoolSize() > 0
                && settings.warmImages().contains(image)
                && options.equals(settings.defaults())
                && limits.workspaceBytes() == settings.poolLimits().workspaceBytes();
    }

    /**
     * A ready container of {@code image} with {@code limits} applied, or empty when none is ready (one that died
     * or cannot take the limits is closed); the pool refills either way.
     */
    Optional<DockerSession> take(String image, Limits limits) {
        ConcurrentLinkedDeque<DockerSession> pool = pools.get(image);
        DockerSession warm;
        while (pool != null && (warm = pool.pollFirst()) != null) {
            refill(image);
            if (warm.channel().isOpen()) {
                try {
                    warm.applyLimits(limits);
                    return Optional.of(warm);
                } catch (RuntimeException e) {
                    log.warn("cannot change the limits of a warm container: {}", e.getMessage());
                }
            }
            warm.close();
        }
        refill(image);
        return Optional.empty();
    }

    private void refill(String image) {
        if (closed || settings.warmPoolSize() == 0 || !settings.warmImages().contains(image)
                || !runtimeUsable.getAsBoolean()) {
            return;
        }
        ConcurrentLinkedDeque<DockerSession> pool = pools.computeIfAbsent(image, k -> new ConcurrentLinkedDeque<>());
        AtomicInteger inFlight = refilling.computeIfAbsent(image, k -> new AtomicInteger());
        while (pool.size() + inFlight.get() < settings.warmPoolSize()) {
            inFlight.incrementAndGet();
            refiller.execute(() -> {
                try {
                    if (!closed) {
                        pool.addLast(launcher.launch("sbx-" + UUID.randomUUID().toString().substring(0, 12), image,
                                settings.poolLimits(), settings.defaults()));
                    }
                } catch (RuntimeException e) {
                    log.warn("warm pool for {}: cannot create a container: {}", image, e.getMessage());
                } finally {
                    inFlight.decrementAndGet();
                }
            });
        }
    }

    /** Ready containers per warm image, for metrics. */
    Map<String, Integer> sizes() {
        Map<String, Integer> sizes = new TreeMap<>();
        pools.forEach((image, pool) -> sizes.put(image, pool.size()));
        return sizes;
    }

    /** The containers waiting in the pool. */
    List<String> containerIds() {
        List<String> ids = new ArrayList<>();
        pools.values().forEach(pool -> pool.forEach(s -> ids.add(s.containerId())));
        return ids;
    }

    /** Lets creations in flight finish, then closes every ready container. */
    @Override
    public void close() {
        closed = true;
        refiller.shutdown();
        try {
            refiller.awaitTermination(CLOSE_WAIT_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        pools.values().forEach(pool -> pool.forEach(DockerSession::closeQuietly));
    }
}
