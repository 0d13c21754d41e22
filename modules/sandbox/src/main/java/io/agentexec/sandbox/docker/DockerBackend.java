package io.agentexec.sandbox.docker;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.exception.NotFoundException;
import com.github.dockerjava.api.model.Container;
import io.agentexec.sandbox.agent.AgentBinary;
import io.agentexec.sandbox.backend.BackendSession;
import io.agentexec.sandbox.backend.ImagePresence;
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

    private DockerBackend(DockerClient client, DockerBackendSettings settings, AgentBinary agent) {
        this.client = client;
        this.settings = settings;
        ContainerOwner owner = ContainerOwner.current();
        this.removal = new ContainerRemoval(client, settings.removal());
        this.reaper = new ContainerReaper(client, removal, owner);
        this.launcher = new ContainerLauncher(client, DockerClients.host(), settings,
                new AgentVolume(client, agent, removal, owner.label()), removal, owner.label(),
                session -> live.remove(session.containerId()));
        this.health = new RuntimeHealthCheck(client, settings, launcher);
        this.pool = new WarmPool(settings, launcher,
                () -> health.now(settings.defaults().runtime()).status() != RuntimeHealth.Status.UNHEALTHY);
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
        DockerBackend backend = new DockerBackend(DockerClients.connect(), settings, agent);
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
        DockerSession session = (pool.serves(spec.image(), spec.limits(), options)
                ? pool.take(spec.image(), spec.limits()) : Optional.<DockerSession>empty())
                .orElseGet(() -> launcher.launch(spec.sessionId(), spec.image(), spec.limits(), options));
        live.put(session.containerId(), session);
        return session;
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

    /** Removes managed containers whose owning JVM on this host has exited. */
    public int reapOrphans() {
        return reaper.reapOrphans();
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
