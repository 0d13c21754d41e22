package io.agentexec.sandbox.docker;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.exception.ConflictException;
import com.github.dockerjava.api.exception.NotFoundException;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Semaphore;
import java.util.function.Consumer;

/**
 * Makes a session's container and brings it to life (create, attach, start, the agent's greeting), and serves the
 * live container's calls to the daemon: its limits changed in place, its OOM record read. The warm pool, the runtime
 * health check and the backend all get their containers here.
 */
final class ContainerLauncher {
    /** How long Docker's OOM record of a container may lag the end of its attach stream. */
    private static final Duration OOM_STATE_WAIT = Duration.ofSeconds(2);
    private static final Duration OOM_STATE_POLL = Duration.ofMillis(50);

    private final DockerClient client;
    private final URI dockerHost;
    private final DockerBackendSettings settings;
    private final AgentVolume agentVolume;
    private final ContainerRemoval removal;
    private final Map<String, String> owner;
    private final Consumer<DockerSession> onClose;
    /** Containers being made at once, whoever makes them (docker.max-concurrent-creates); more wait, in order. */
    private final Semaphore creating;

    /**
     * @param owner   this JVM's owner labels (and its node's), on every container
     * @param onClose told of each session that closed (before its container is removed in the background)
     */
    ContainerLauncher(DockerClient client, URI dockerHost, DockerBackendSettings settings, AgentVolume agentVolume,
                      ContainerRemoval removal, Map<String, String> owner, Consumer<DockerSession> onClose) {
        this.client = client;
        this.dockerHost = dockerHost;
        this.settings = settings;
        this.agentVolume = agentVolume;
        this.removal = removal;
        this.owner = Map.copyOf(owner);
        this.onClose = onClose;
        this.creating = new Semaphore(settings.maxConcurrentCreates(), true);
    }

    /** Whether a caller waits for its turn to make a container. */
    boolean creationsWaiting() {
        return creating.hasQueuedThreads();
    }

    /**
     * A started container whose agent greeted; its options must have been checked. At most
     * {@code docker.max-concurrent-creates} are being made at once: more wait for their turn here.
     */
    DockerSession launch(String sessionId, String image, Limits limits, SandboxOptions options) {
        try {
            creating.acquire();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SandboxUnavailableException("interrupted while waiting to make a container from " + image, e);
        }
        try {
            return create(sessionId, image, limits, options);
        } finally {
            creating.release();
        }
    }

    private DockerSession create(String sessionId, String image, Limits limits, SandboxOptions options) {
        ContainerSpec spec = ContainerSpec.forSession(sessionId, image, limits, options, settings,
                agentVolume.ensure(image), owner);
        String id;
        try {
            id = spec.command(client).exec().getId();
        } catch (NotFoundException e) {
            throw new SandboxUnavailableException("image " + image + " is not present; build it with images/build.sh"
                    + " or pull it from a registry", e);
        } catch (ConflictException e) {
            throw new SandboxUnavailableException("container name is taken: " + e.getMessage(), e);
        } catch (RuntimeException e) {
            throw new SandboxUnavailableException("cannot create a container from " + image + ": " + e.getMessage(), e);
        }
        try {
            AttachStream attach = AttachStream.open(dockerHost, id, "");
            DockerSession session = new DockerSession(this, sessionId, image, id, attach, settings.workspace(), limits,
                    options.runtime());
            attach.pumpTo(session.channel());
            client.startContainerCmd(id).exec();
            session.channel().awaitHello(settings.agentStartTimeout());
            return session;
        } catch (IOException | RuntimeException e) {
            removal.now(id);
            throw new SandboxUnavailableException("sandbox container from " + image + " did not start: " + e.getMessage(), e);
        }
    }

    /** Whether the runtime gives the container a kernel of its own, which then counts the user's processes. */
    boolean hasOwnKernel(Optional<String> runtime) {
        return settings.hasOwnKernel(runtime);
    }

    /** Memory, swap, CPU and pids of a live container, changed in place ({@code docker update}). */
    void updateLimits(String containerId, Limits limits, Optional<String> runtime) {
        ContainerSpec.Resources r = ContainerSpec.Resources.of(limits, runtime, settings);
        client.updateContainerCmd(containerId)
                .withMemory(r.memoryBytes())
                .withMemorySwap(r.memorySwapBytes())
                .withCpuPeriod(r.cpuPeriodMicros())
                .withCpuQuota(r.cpuQuotaMicros())
                .withPidsLimit(r.pidsLimit())
                .exec();
    }

    /** Docker's own record of an OOM kill of the container's main process; it may lag the stream's end briefly. */
    boolean diedOfOutOfMemory(String containerId) {
        long deadline = System.nanoTime() + OOM_STATE_WAIT.toNanos();
        try {
            for (;;) {
                var state = client.inspectContainerCmd(containerId).exec().getState();
                if (Boolean.TRUE.equals(state.getOOMKilled())) {
                    return true;
                }
                // Docker's OOM event may arrive after the exit event, so a stopped container is asked again.
                if (System.nanoTime() > deadline) {
                    return false;
                }
                Thread.sleep(OOM_STATE_POLL.toMillis());
            }
        } catch (NotFoundException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** A session closed: its agent is gone; its stopped container is removed in the background. */
    void closed(DockerSession session) {
        onClose.accept(session);
        removal.later(session.containerId());
    }
}
