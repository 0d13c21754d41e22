package io.agentexec.sandbox.docker;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.exception.NotFoundException;
import com.github.dockerjava.api.model.Container;
import io.agentexec.sandbox.agent.AgentBinary;
import io.agentexec.sandbox.agent.RunSpec;
import io.agentexec.sandbox.backend.BackendSession;
import io.agentexec.sandbox.backend.ImagePresence;
import io.agentexec.sandbox.backend.NodeOwner;
import io.agentexec.sandbox.backend.OwnerLiveness;
import io.agentexec.sandbox.backend.RuntimeHealth;
import io.agentexec.sandbox.backend.SandboxBackend;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.backend.SessionSpec;
import io.agentexec.sandbox.model.SandboxOptions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sandboxes as hardened Docker containers, one per session. The container's main process is the agent (pid 1, which
 * also reaps zombies); each block reaches it over a held-open attach stream. This class composes the parts, each with
 * one job: {@link DockerClients} (the client), {@link ContainerSpec} (the hardened create command),
 * {@link ContainerLauncher} (create, attach, start; limits and OOM record of a live container), {@link AgentVolume}
 * (the agent's read-only volume), {@link WarmPool} (ready containers), {@link RuntimeHealthCheck} (the runtimes'
 * health), {@link ContainerRemoval} (the bounded removal pool) and {@link ContainerReaper} (orphans, and this JVM's
 * containers at its end).
 *
 * <p>A one-off opened for an owner ({@link SessionSpec#owner}) with the default hardening may give its container back
 * when it is done ({@link BackendSession#recycle}): the agent scrubs it and the pool keeps it for that owner's next
 * one-off (see {@link WarmPool}, docker.recycle).
 */
public final class DockerBackend implements SandboxBackend {
    private static final Logger log = LoggerFactory.getLogger(DockerBackend.class);

    private final DockerClient client;
    private final DockerBackendSettings settings;
    private final Map<String, DockerSession> live = new ConcurrentHashMap<>();
    private final ContainerRemoval removal;
    private final ContainerReaper reaper;
    private final ContainerLauncher launcher;
    private final RuntimeHealthCheck health;
    private final WarmPool pool;
    private volatile boolean closed;

    private DockerBackend(DockerClient client, DockerBackendSettings settings, AgentBinary agent,
                          Optional<NodeOwner> node, Function<String, Optional<RunSpec>> primer) {
        this.client = client;
        this.settings = settings;
        ContainerOwner owner = ContainerOwner.current(node);
        this.removal = new ContainerRemoval(client, settings.removal());
        this.reaper = new ContainerReaper(client, removal, owner);
        this.launcher = new ContainerLauncher(client, DockerClients.host(), settings,
                new AgentVolume(client, agent, removal, owner.labels()), removal, owner.labels(),
                session -> live.remove(session.containerId()));
        this.health = new RuntimeHealthCheck(client, settings, launcher);
        this.pool = new WarmPool(settings, launcher,
                () -> health.now(settings.defaults().runtime()).status() != RuntimeHealth.Status.UNHEALTHY, primer);
        removal.holdWhile(() -> launcher.creationsWaiting() || pool.callersWaiting());
        reaper.removeOwnAtExit(this::containerIds);
    }

    /** Drops the JVM exit hook that removes this process's containers: the owner closes the backend itself. */
    @Override
    public void ownerClosesAtExit() {
        reaper.close();
    }

    /** A client for the daemon named by {@code DOCKER_HOST} (or the local socket); see {@link DockerClients}. */
    public static DockerClient client() {
        return DockerClients.create();
    }

    /** True when a Docker daemon answers a ping. */
    public static boolean daemonAnswers(DockerClient client) {
        return DockerClients.answers(client);
    }

    /** Connects, removes what crashed JVMs left behind, checks the runtimes and starts filling the warm pool. */
    public static DockerBackend start(DockerBackendSettings settings, AgentBinary agent) {
        return start(settings, agent, Optional.empty(), image -> Optional.empty());
    }

    /**
     * As {@link #start(DockerBackendSettings, AgentBinary)}, for the cluster node {@code node} when given: its
     * containers carry its address and uid, and those an earlier incarnation of it left (the same address, another
     * uid) are removed now, whatever host they were made on. {@code primer} gives, for an image, the run whose
     * pre-initialised interpreter its pooled containers start before they are taken (empty: none).
     */
    public static DockerBackend start(DockerBackendSettings settings, AgentBinary agent, Optional<NodeOwner> node,
                                      Function<String, Optional<RunSpec>> primer) {
        DockerBackend backend = new DockerBackend(DockerClients.connect(), settings, agent, node, primer);
        int reaped = backend.reapOrphans();
        if (reaped > 0) {
            log.info("removed {} sandbox container(s) left by processes that no longer run", reaped);
        }
        backend.health.start();
        backend.pool.fill();
        return backend;
    }

    @Override
    public String name() {
        return "docker";
    }

    /** The backend's own client, for tests and tools that look at its containers. */
    public DockerClient dockerClient() {
        return client;
    }

    @Override
    public BackendSession open(SessionSpec spec) {
        if (closed) {
            throw new SandboxUnavailableException("the Docker backend is closed");
        }
        // The same rules the options were checked against when they came in, once more where they take effect.
        SandboxOptions options = settings.rules().checked(spec.options());
        health.requireHealthy(options.runtime());
        // A one-off for an owner, with the default hardening, may take that owner's recycled container and give it back.
        Optional<String> owner = spec.owner().filter(o -> settings.recycles(spec.limits(), options));
        DockerSession session = (owner.isPresent() || pool.serves(spec.image(), spec.limits(), options)
                ? pool.take(spec.image(), spec.limits(), owner) : Optional.<DockerSession>empty())
                .orElseGet(() -> launcher.launch(spec.sessionId(), spec.image(), spec.limits(), options));
        session.handedOut(owner.isPresent() ? this::recycle : null, owner);
        live.put(session.containerId(), session);
        return session;
    }

    /** A one-off's container given back: no longer live; the pool scrubs and keeps it, or retires it. */
    private boolean recycle(DockerSession session, Optional<RunSpec> prime) {
        live.remove(session.containerId());
        return pool.recycle(session, prime);
    }

    /** What the warm pool did since the backend started (creations, takes served, recycled, retired). */
    public PoolStats poolStats() {
        WarmPool.Stats s = pool.stats();
        return new PoolStats(s.created(), s.servedFresh(), s.servedRecycled(), s.waited(), s.recycled(), s.retired(),
                s.failedCreations(), pool.recycledSizes());
    }

    /**
     * The warm pool's counts since the backend started.
     *
     * @param created         containers the pool made
     * @param servedFresh     takes served a fresh container (ready, or made for the taker while it waited)
     * @param servedRecycled  takes served a recycled container of the taker's owner
     * @param waited          takes that found nothing ready and waited
     * @param recycled        one-offs' containers scrubbed and given back
     * @param retired         containers the pool removed (used up, scrub failed, demand fell, over budget)
     * @param failedCreations creations that failed
     * @param recycledIdle    recycled containers idle now, per image
     */
    public record PoolStats(long created, long servedFresh, long servedRecycled, long waited, long recycled,
                            long retired, long failedCreations, Map<String, Integer> recycledIdle) {
        public PoolStats {
            recycledIdle = Map.copyOf(recycledIdle);
        }
    }

    @Override
    public ImagePresence imagePresence(String image) {
        try {
            client.inspectImageCmd(image).exec();
            return ImagePresence.PRESENT;
        } catch (NotFoundException e) {
            return ImagePresence.ABSENT;
        } catch (RuntimeException e) {
            return ImagePresence.UNKNOWN;
        }
    }

    /** Ready containers per warm image, for metrics. */
    @Override
    public Map<String, Integer> warmPoolSizes() {
        return pool.sizes();
    }

    /** The health of every runtime a sandbox may use, as known now (a check may still be running). */
    @Override
    public List<RuntimeHealth> runtimeHealth() {
        return health.all();
    }

    /** The runtime's health once its check is done; waits for a check still running. */
    public RuntimeHealth awaitRuntimeHealth(Optional<String> runtime) {
        return health.await(runtime);
    }

    /**
     * Removes managed containers whose owner is gone without a judge of nodes: a JVM of this host that has exited, an
     * earlier incarnation of this engine's node.
     */
    public int reapOrphans() {
        return reaper.reapOrphans();
    }

    /** As {@link #reapOrphans()}, and containers of nodes {@code judge} says are gone, whatever host made them. */
    @Override
    public int reapOrphans(OwnerLiveness judge) {
        if (closed) {
            return 0;
        }
        return reaper.reapOrphans(judge);
    }

    /** Managed containers on the daemon, of any owner, in any state. */
    public List<Container> managedContainers() {
        return reaper.managedContainers();
    }

    public Set<String> liveContainerIds() {
        return Set.copyOf(live.keySet());
    }

    private List<String> containerIds() {
        List<String> ids = new ArrayList<>(live.keySet());
        ids.addAll(pool.containerIds());
        return ids;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        pool.close();
        health.close();
        live.values().forEach(DockerSession::closeQuietly);
        // Pending removals (those of the sessions just closed too) finish before close returns.
        removal.close();
        // Whatever is left of this process's (a removal that failed or timed out) goes now, found by its owner label.
        reaper.removeOwn(containerIds());
        reaper.close();
        DockerClients.close(client);
    }
}
