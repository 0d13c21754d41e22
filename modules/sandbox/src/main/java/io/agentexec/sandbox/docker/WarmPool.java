package io.agentexec.sandbox.docker;

import io.agentexec.sandbox.agent.RunSpec;
import io.agentexec.sandbox.agent.Scrub;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Started containers kept ready, so that opening a session or running a one-off costs no container start, in two kinds:
 * <ul>
 *   <li><b>fresh</b> containers per warm image, never used, so any session or tenant may take one. Their number follows
 *   the demand that recycling does not serve ({@link PoolSizing#freshTarget}); they are made off the request path, on
 *   {@code docker.max-concurrent-creates} threads, each primed with the image's pre-initialised interpreter.</li>
 *   <li><b>recycled</b> containers per image and owner: a one-off's container that its run left clean, scrubbed by its
 *   agent ({@link #recycle}), kept for the same owner's next one-off only (any owner's when the operator shares them),
 *   as many as that owner's recent rate needs ({@link PoolSizing#recycledTarget}).</li>
 * </ul>
 * A caller that finds neither waits for the next container that becomes ready for it (its own recycled one coming back,
 * or a fresh one made for it), never makes one beside the pool. Everything held counts its memory limit against the
 * budget; past it the least recently used idle containers go. Only sessions and one-offs that ask for nothing fixed at
 * creation come from it (the default options, the pool's workspace size); memory, CPU and pids are changed in place.
 */
final class WarmPool implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(WarmPool.class);
    /** How long closing waits for creations in flight (interrupting docker-java mid-call can orphan a container). */
    private static final long CLOSE_WAIT_SECONDS = 30;
    /** A creation's duration assumed until one was measured: about what this machine's daemon takes (see README). */
    private static final double INITIAL_CREATE_SECONDS = 1.0;
    /** Weight of the newest measurement in the running averages of creation and busy times. */
    private static final double AVERAGE_WEIGHT = 0.2;
    /** The one owner key of recycled containers when they are shared across tenants. */
    private static final String SHARED = "*";
    /** Attempts at taking a ready container whose agent turns out dead before the caller waits for a new one. */
    private static final int TAKE_ATTEMPTS = 8;

    /** What the pool did since the engine started, for tests, benchmarks and metrics. */
    record Stats(long created, long servedFresh, long servedRecycled, long waited, long recycled, long retired,
                 long failedCreations) {
    }

    private final DockerBackendSettings settings;
    private final ContainerLauncher launcher;
    private final BooleanSupplier runtimeUsable;
    private final Function<String, Optional<RunSpec>> primer;
    private final long containerBytes;
    private final Object lock = new Object();
    /** Guarded by {@link #lock}, as is everything in an {@link Image}. */
    private final Map<String, Image> images = new HashMap<>();
    private final ExecutorService creators;
    private final ScheduledExecutorService ticker;
    private final AtomicLong created = new AtomicLong();
    private final AtomicLong servedFresh = new AtomicLong();
    private final AtomicLong servedRecycled = new AtomicLong();
    private final AtomicLong waited = new AtomicLong();
    private final AtomicLong recycled = new AtomicLong();
    private final AtomicLong retired = new AtomicLong();
    private final AtomicLong failedCreations = new AtomicLong();
    private volatile boolean closed;

    private record Idle(DockerSession session, long sinceNanos) {
    }

    /** A caller waiting for a container; {@code owner} is the recycling key it may take (null: fresh only). */
    private static final class Waiter {
        final String owner;
        final CompletableFuture<DockerSession> future = new CompletableFuture<>();

        Waiter(String owner) {
            this.owner = owner;
        }
    }

    private final class Image {
        final String name;
        final boolean warm;
        final ArrayDeque<Idle> fresh = new ArrayDeque<>();
        final Map<String, ArrayDeque<Idle>> recycled = new HashMap<>();
        final Map<String, PoolSizing.Rate> ownerTakes = new HashMap<>();
        final ArrayDeque<Waiter> waiters = new ArrayDeque<>();
        final PoolSizing.Rate freshTakes = new PoolSizing.Rate(settings.pool().demandWindow().toNanos() / 1e9);
        /** Creations queued or running, and of those running. */
        int scheduled;
        int running;
        int target;
        double createSeconds = INITIAL_CREATE_SECONDS;
        double busySeconds;

        Image(String name) {
            this.name = name;
            this.warm = settings.warmPoolSize() > 0 && settings.warmImages().contains(name);
        }

        int recycledCount() {
            return recycled.values().stream().mapToInt(ArrayDeque::size).sum();
        }
    }

    /**
     * @param runtimeUsable false while the default runtime is known to be unhealthy: no container is made then
     * @param primer        for an image, the run whose pre-initialised interpreter its fresh containers start
     */
    WarmPool(DockerBackendSettings settings, ContainerLauncher launcher, BooleanSupplier runtimeUsable,
             Function<String, Optional<RunSpec>> primer) {
        this.settings = settings;
        this.launcher = launcher;
        this.runtimeUsable = runtimeUsable;
        this.primer = primer;
        this.containerBytes = settings.poolLimits().memoryBytes();
        this.creators = Executors.newFixedThreadPool(settings.maxConcurrentCreates(), r -> {
            Thread t = new Thread(r, "agentexec-warm-pool");
            t.setDaemon(true);
            return t;
        });
        this.ticker = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "agentexec-warm-pool-tick");
            t.setDaemon(true);
            return t;
        });
    }

    /** Starts filling the pool of every warm image, and following demand. */
    void fill() {
        synchronized (lock) {
            long now = System.nanoTime();
            settings.warmImages().forEach(image -> schedule(image(image), now));
        }
        long tick = settings.pool().tick().toNanos();
        ticker.scheduleWithFixedDelay(this::tickQuietly, tick, tick, TimeUnit.NANOSECONDS);
    }

    /** A session with these limits and options can come from the pool's fresh containers. */
    boolean serves(String image, Limits limits, SandboxOptions options) {
        return settings.warmPoolSize() > 0
                && settings.warmImages().contains(image)
                && options.equals(settings.defaults())
                && limits.workspaceBytes() == settings.poolLimits().workspaceBytes();
    }

    /**
     * A ready container of {@code image} with {@code limits} applied: {@code owner}'s own recycled one (when given),
     * else a fresh one; when the image has a warm pool and none is ready, waits for the next one that becomes ready
     * for this caller (up to {@code warm-pool.take-timeout}). Empty when the image has no warm pool and no recycled
     * container is ready: the caller makes its own.
     *
     * @param owner the recycling owner of a one-off that may take a recycled container; empty for fresh only
     * @throws SandboxUnavailableException when the wait ends without a container (the pool could not make one)
     */
    Optional<DockerSession> take(String image, Limits limits, Optional<String> owner) {
        String key = owner.map(this::key).orElse(null);
        for (int attempt = 0; attempt < TAKE_ATTEMPTS; attempt++) {
            long now = System.nanoTime();
            List<DockerSession> dead = new ArrayList<>();
            DockerSession got = null;
            Waiter waiter = null;
            synchronized (lock) {
                if (closed) {
                    return Optional.empty();
                }
                Image img = image(image);
                if (key != null && attempt == 0) {
                    img.ownerTakes.computeIfAbsent(key, k -> new PoolSizing.Rate(windowSeconds())).event(now);
                }
                got = key == null ? null : poll(img.recycled.get(key), dead);
                if (got != null) {
                    servedRecycled.incrementAndGet();
                } else if (img.warm) {
                    if (attempt == 0) {
                        img.freshTakes.event(now);
                    }
                    got = poll(img.fresh, dead);
                    if (got != null) {
                        servedFresh.incrementAndGet();
                    } else {
                        waiter = new Waiter(key);
                        img.waiters.add(waiter);
                        waited.incrementAndGet();
                    }
                    schedule(img, now);
                }
            }
            retire(dead, "its agent was gone when it was taken");
            if (got == null && waiter == null) {
                return Optional.empty();
            }
            if (got == null) {
                got = await(image, waiter);
            }
            if (got.isClosed()) {
                retire(List.of(got), "its agent was gone when it was taken");
                continue;
            }
            try {
                got.applyLimits(limits);
                return Optional.of(got);
            } catch (RuntimeException e) {
                log.warn("cannot change the limits of a pooled container: {}", e.getMessage());
                retire(List.of(got), "its limits could not be changed");
            }
        }
        throw new SandboxUnavailableException("no usable container of " + image + " after " + TAKE_ATTEMPTS
                + " attempts: the pooled ones kept dying");
    }

    private DockerSession await(String image, Waiter waiter) {
        try {
            return waiter.future.get(settings.pool().takeTimeout().toNanos(), TimeUnit.NANOSECONDS);
        } catch (TimeoutException e) {
            synchronized (lock) {
                if (image(image).waiters.remove(waiter)) {
                    throw new SandboxUnavailableException("no container of " + image + " became ready within "
                            + settings.pool().takeTimeout() + " (docker.warm-pool.take-timeout): the daemon is too slow"
                            + " or cannot make them");
                }
            }
            return waiter.future.join(); // handed over just as the wait ended
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            throw cause instanceof SandboxUnavailableException u ? u
                    : new SandboxUnavailableException("cannot make a container of " + image + ": " + cause, cause);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            synchronized (lock) {
                if (!image(image).waiters.remove(waiter)) {
                    waiter.future.thenAccept(s -> retire(List.of(s), "its taker was interrupted"));
                }
            }
            throw new SandboxUnavailableException("interrupted while waiting for a container of " + image, e);
        }
    }

    /**
     * Takes a one-off's container back: it has served {@code recycle.max-uses} one-offs (retired), or its agent scrubs
     * it (see {@link Scrub}; a failed scrub retires it), its limits go back to the pool's, and it is kept for its owner
     * (or handed to the owner's one-off waiting now). Runs on the caller's thread (the closer, after the answer).
     *
     * @param prime the run whose interpreter the scrub pre-starts (the one-off's first block's language)
     * @return whether it was kept
     */
    boolean recycle(DockerSession session, Optional<RunSpec> prime) {
        DockerBackendSettings.Recycle r = settings.recycle();
        if (closed) {
            retire(List.of(session), "the engine is closing");
            return false;
        }
        if (session.uses() >= r.maxUses()) {
            retire(List.of(session), "it served " + session.uses() + " uses (docker.recycle.max-uses)");
            return false;
        }
        try {
            session.scrub(new Scrub(ContainerSpec.writableMounts(settings.defaults(), settings), r.keepZygote(),
                    r.killWait(), prime), r.scrubTimeout());
            session.applyLimits(settings.poolLimits());
        } catch (RuntimeException e) {
            log.info("container {} retired instead of recycled: {}", session.containerId(), e.getMessage());
            retire(List.of(session), e.getMessage());
            return false;
        }
        long now = System.nanoTime();
        String key = key(session.owner().orElseThrow());
        List<DockerSession> surplus = new ArrayList<>();
        synchronized (lock) {
            if (closed) {
                surplus.add(session);
            } else {
                Image img = image(session.image());
                double busy = (now - session.takenNanos()) / 1e9;
                img.busySeconds = img.busySeconds == 0 ? busy : img.busySeconds + AVERAGE_WEIGHT * (busy - img.busySeconds);
                Waiter waiter = null;
                for (Waiter w : img.waiters) {
                    if (key.equals(w.owner)) {
                        waiter = w;
                        break;
                    }
                }
                if (waiter != null) {
                    img.waiters.remove(waiter);
                    servedRecycled.incrementAndGet();
                    waiter.future.complete(session);
                } else {
                    ArrayDeque<Idle> mine = img.recycled.computeIfAbsent(key, k -> new ArrayDeque<>());
                    mine.addLast(new Idle(session, now));
                    while (mine.size() > r.maxIdlePerTenant()) {
                        surplus.add(mine.pollFirst().session());
                    }
                    overBudget(surplus);
                }
            }
        }
        recycled.incrementAndGet();
        retire(surplus, "the pool holds enough idle containers");
        return !surplus.contains(session);
    }

    /** Ready fresh containers per warm image, for metrics. */
    Map<String, Integer> sizes() {
        Map<String, Integer> sizes = new TreeMap<>();
        synchronized (lock) {
            images.values().stream().filter(i -> i.warm).forEach(i -> sizes.put(i.name, i.fresh.size()));
        }
        return sizes;
    }

    Stats stats() {
        return new Stats(created.get(), servedFresh.get(), servedRecycled.get(), waited.get(), recycled.get(),
                retired.get(), failedCreations.get());
    }

    /** Idle recycled containers kept per image, for tests and metrics. */
    Map<String, Integer> recycledSizes() {
        Map<String, Integer> sizes = new TreeMap<>();
        synchronized (lock) {
            images.values().forEach(i -> {
                if (i.recycledCount() > 0) {
                    sizes.put(i.name, i.recycledCount());
                }
            });
        }
        return sizes;
    }

    /** Whether a caller waits for the pool to make a container (removals hold off meanwhile). */
    boolean callersWaiting() {
        synchronized (lock) {
            return images.values().stream().anyMatch(i -> !i.waiters.isEmpty());
        }
    }

    /** The containers waiting in the pool. */
    List<String> containerIds() {
        List<String> ids = new ArrayList<>();
        synchronized (lock) {
            for (Image img : images.values()) {
                img.fresh.forEach(i -> ids.add(i.session().containerId()));
                img.recycled.values().forEach(q -> q.forEach(i -> ids.add(i.session().containerId())));
            }
        }
        return ids;
    }

    /** Lets creations in flight finish, then closes every ready container; callers still waiting are refused. */
    @Override
    public void close() {
        List<DockerSession> idle = new ArrayList<>();
        synchronized (lock) {
            closed = true;
            for (Image img : images.values()) {
                img.waiters.forEach(w -> w.future.completeExceptionally(
                        new SandboxUnavailableException("the sandbox engine is closing")));
                img.waiters.clear();
            }
        }
        ticker.shutdownNow();
        creators.shutdown();
        try {
            creators.awaitTermination(CLOSE_WAIT_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        synchronized (lock) {
            for (Image img : images.values()) {
                img.fresh.forEach(i -> idle.add(i.session()));
                img.fresh.clear();
                img.recycled.values().forEach(q -> q.forEach(i -> idle.add(i.session())));
                img.recycled.clear();
            }
        }
        idle.forEach(DockerSession::closeQuietly);
    }

    // ---- under the lock

    private Image image(String name) {
        return images.computeIfAbsent(name, Image::new);
    }

    private String key(String owner) {
        return settings.recycle().shareAcrossTenants() ? SHARED : owner;
    }

    private double windowSeconds() {
        return settings.pool().demandWindow().toNanos() / 1e9;
    }

    /**
     * The most recently idle live container of {@code queue}, dead ones on the way going to {@code dead} (its tail:
     * containers join at the tail, so each queue runs from the longest idle to the most recent). Taking the most recent keeps the containers a steady demand uses to as
     * few as it needs, so the ones beyond it sit idle at the head, where {@link #tick} retires them, and their uses
     * (hence their retirements at {@code recycle.max-uses}) do not all come due together as they would in turn.
     */
    private static DockerSession poll(ArrayDeque<Idle> queue, List<DockerSession> dead) {
        Idle idle;
        while (queue != null && (idle = queue.pollLast()) != null) {
            if (!idle.session().isClosed()) {
                return idle.session();
            }
            dead.add(idle.session());
        }
        return null;
    }

    /** Memory limits of everything the pool holds: ready, being made, recycled. */
    private long heldBytes() {
        long n = 0;
        for (Image img : images.values()) {
            n += img.fresh.size() + img.running + img.recycledCount();
        }
        return n * containerBytes;
    }

    private int freshTarget(Image img, long now) {
        long others = heldBytes() - (long) (img.fresh.size() + img.running) * containerBytes;
        DockerBackendSettings.Pool p = settings.pool();
        return PoolSizing.freshTarget(img.freshTakes.perSecond(now), img.createSeconds, img.freshTakes.idleSeconds(now),
                settings.warmPoolSize(), p.maxSize(), p.headroom(), p.idleTimeout().toNanos() / 1e9,
                PoolSizing.affordable(p.memoryBudgetBytes(), others, containerBytes));
    }

    /** Schedules creations up to the image's target plus one for each caller waiting. */
    private void schedule(Image img, long now) {
        if (closed || !img.warm || !runtimeUsable.getAsBoolean()) {
            return;
        }
        img.target = freshTarget(img, now);
        int want = img.target + img.waiters.size();
        while (img.fresh.size() + img.scheduled < want) {
            img.scheduled++;
            try {
                creators.execute(() -> create(img));
            } catch (RejectedExecutionException e) {
                img.scheduled--;
                return;
            }
        }
    }

    /** Past the memory budget, the least recently used idle containers go (recycled ones before fresh ones). */
    private void overBudget(List<DockerSession> out) {
        long budget = settings.pool().memoryBudgetBytes();
        while (heldBytes() > budget) {
            ArrayDeque<Idle> oldest = null;
            for (Image img : images.values()) {
                for (ArrayDeque<Idle> q : img.recycled.values()) {
                    if (!q.isEmpty() && (oldest == null || q.peekFirst().sinceNanos() < oldest.peekFirst().sinceNanos())) {
                        oldest = q;
                    }
                }
            }
            if (oldest == null) {
                for (Image img : images.values()) {
                    if (img.fresh.size() > 0 && (oldest == null
                            || img.fresh.peekFirst().sinceNanos() < oldest.peekFirst().sinceNanos())) {
                        oldest = img.fresh;
                    }
                }
            }
            if (oldest == null) {
                return; // only containers being made: they are counted, not evicted
            }
            out.add(oldest.pollFirst().session());
        }
    }

    // ---- creations, on the creators' threads

    private void create(Image img) {
        synchronized (lock) {
            boolean needed = !img.waiters.isEmpty() || img.fresh.size() + img.running < img.target;
            if (closed || !needed) {
                img.scheduled--;
                return;
            }
            img.running++;
        }
        long start = System.nanoTime();
        DockerSession session = null;
        RuntimeException failure = null;
        try {
            session = launcher.launch("sbx-" + UUID.randomUUID().toString().substring(0, 12), img.name,
                    settings.poolLimits(), settings.defaults());
            Optional<RunSpec> prime = primer.apply(img.name);
            if (prime.isPresent()) {
                // A fresh container gets its interpreter started now, so that its first block is a fork too.
                session.scrub(new Scrub(List.of(), false, settings.recycle().killWait(), prime),
                        settings.recycle().scrubTimeout());
            }
        } catch (RuntimeException e) {
            failure = e;
        }
        DockerSession ready = session;
        List<DockerSession> drop = new ArrayList<>();
        synchronized (lock) {
            img.scheduled--;
            img.running--;
            if (failure != null) {
                failedCreations.incrementAndGet();
                Waiter w = img.waiters.pollFirst();
                if (w != null) {
                    w.future.completeExceptionally(failure instanceof SandboxUnavailableException ? failure
                            : new SandboxUnavailableException("cannot make a container of " + img.name + ": "
                            + failure.getMessage(), failure));
                }
                if (ready != null) {
                    drop.add(ready);
                }
            } else {
                created.incrementAndGet();
                double took = (System.nanoTime() - start) / 1e9;
                img.createSeconds += AVERAGE_WEIGHT * (took - img.createSeconds);
                Waiter w = closed ? null : img.waiters.pollFirst();
                if (closed) {
                    drop.add(ready);
                } else if (w != null) {
                    servedFresh.incrementAndGet();
                    w.future.complete(ready);
                } else {
                    img.fresh.addLast(new Idle(ready, System.nanoTime()));
                    overBudget(drop);
                }
            }
        }
        if (failure != null) {
            log.warn("warm pool for {}: cannot create a container: {}", img.name, failure.getMessage());
        }
        retire(drop, failure != null ? "its creation failed" : "the pool holds enough idle containers");
    }

    // ---- following demand, on the ticker's thread

    private void tickQuietly() {
        try {
            tick();
        } catch (RuntimeException e) {
            log.warn("warm pool: {}", e.toString());
        }
    }

    /**
     * Recomputes every target: retires fresh containers beyond it and idle recycled ones an owner no longer needs, each
     * only once it has sat idle for the idle timeout ({@link PoolSizing#idleToRetire}).
     */
    void tick() {
        long now = System.nanoTime();
        List<DockerSession> surplus = new ArrayList<>();
        List<DockerSession> dead = new ArrayList<>();
        DockerBackendSettings.Pool p = settings.pool();
        double idleTimeout = p.idleTimeout().toNanos() / 1e9;
        synchronized (lock) {
            if (closed) {
                return;
            }
            for (Image img : images.values()) {
                img.fresh.removeIf(i -> i.session().isClosed() && dead.add(i.session()));
                int target = img.warm ? freshTarget(img, now) : 0;
                for (int n = PoolSizing.idleToRetire(sinceNanos(img.fresh), target, now, idleTimeout); n > 0; n--) {
                    surplus.add(img.fresh.pollFirst().session());
                }
                for (Iterator<Map.Entry<String, ArrayDeque<Idle>>> it = img.recycled.entrySet().iterator(); it.hasNext(); ) {
                    Map.Entry<String, ArrayDeque<Idle>> e = it.next();
                    e.getValue().removeIf(i -> i.session().isClosed() && dead.add(i.session()));
                    PoolSizing.Rate rate = img.ownerTakes.get(e.getKey());
                    int keep = rate == null ? 0 : PoolSizing.recycledTarget(rate.perSecond(now), img.busySeconds,
                            rate.idleSeconds(now), p.headroom(), idleTimeout, settings.recycle().maxIdlePerTenant());
                    for (int n = PoolSizing.idleToRetire(sinceNanos(e.getValue()), keep, now, idleTimeout); n > 0; n--) {
                        surplus.add(e.getValue().pollFirst().session());
                    }
                    if (e.getValue().isEmpty()) {
                        it.remove();
                    }
                }
                img.ownerTakes.entrySet().removeIf(e -> !img.recycled.containsKey(e.getKey())
                        && e.getValue().idleSeconds(now) >= idleTimeout);
                schedule(img, now);
            }
            overBudget(surplus);
        }
        retire(dead, "its agent was gone");
        retire(surplus, "demand for it fell");
    }

    private static long[] sinceNanos(ArrayDeque<Idle> queue) {
        return queue.stream().mapToLong(Idle::sinceNanos).toArray();
    }

    private void retire(List<DockerSession> sessions, String why) {
        for (DockerSession s : sessions) {
            retired.incrementAndGet();
            log.debug("retiring container {}: {}", s.containerId(), why);
            s.closeQuietly();
        }
    }
}
