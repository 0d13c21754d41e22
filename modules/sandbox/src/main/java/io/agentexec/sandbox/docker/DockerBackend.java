package io.agentexec.sandbox.docker;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.command.CreateContainerCmd;
import com.github.dockerjava.api.exception.ConflictException;
import com.github.dockerjava.api.exception.NotFoundException;
import com.github.dockerjava.api.model.Capability;
import com.github.dockerjava.api.model.Container;
import com.github.dockerjava.api.model.HostConfig;
import com.github.dockerjava.api.model.Mount;
import com.github.dockerjava.api.model.MountType;
import com.github.dockerjava.core.DefaultDockerClientConfig;
import com.github.dockerjava.core.DockerClientConfig;
import com.github.dockerjava.core.DockerClientImpl;
import com.github.dockerjava.httpclient5.ApacheDockerHttpClient;
import io.agentexec.sandbox.agent.AgentBinary;
import io.agentexec.sandbox.backend.BackendSession;
import io.agentexec.sandbox.backend.SandboxBackend;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.backend.SessionSpec;
import io.agentexec.sandbox.model.Limits;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sandboxes as hardened Docker containers, one per session. The container's main process is the
 * agent (pid 1, which also reaps zombies); each block reaches it over a held-open attach stream.
 * A warm pool keeps started containers ready so that opening a session costs no container start.
 */
public final class DockerBackend implements SandboxBackend {
    private static final Logger log = LoggerFactory.getLogger(DockerBackend.class);
    static final String MANAGED_LABEL = "io.agentexec.managed";
    static final String SESSION_LABEL = "io.agentexec.session";
    private static final String AGENT_DIR = "/.agentexec";
    private static final String AGENT_FILE = "agentexec-agent";
    private static final long CPU_PERIOD_MICROS = 100_000;
    private static final Duration OOM_STATE_WAIT = Duration.ofSeconds(2);

    private final DockerClient client;
    private final URI dockerHost;
    private final DockerBackendSettings settings;
    private final AgentBinary agent;
    private final ContainerOwner owner = ContainerOwner.current();
    private final Map<String, DockerSession> live = new ConcurrentHashMap<>();
    private final Map<String, ConcurrentLinkedDeque<DockerSession>> pools = new ConcurrentHashMap<>();
    private final Map<String, AtomicInteger> refilling = new ConcurrentHashMap<>();
    private final ExecutorService refiller;
    /** Removes closed sessions' containers after their callers were answered; bounded (see Removal). */
    private final ThreadPoolExecutor remover;
    private final Thread shutdownHook;
    private volatile String agentVolume;
    private volatile boolean closed;

    private DockerBackend(DockerClient client, URI dockerHost, DockerBackendSettings settings, AgentBinary agent) {
        this.client = client;
        this.dockerHost = dockerHost;
        this.settings = settings;
        this.agent = agent;
        this.refiller = Executors.newFixedThreadPool(2, r -> {
            Thread t = new Thread(r, "agentexec-warm-pool");
            t.setDaemon(true);
            return t;
        });
        DockerBackendSettings.Removal removal = settings.removal();
        // Rejects past the queue (the closer then removes the container itself): never an unbounded backlog.
        this.remover = new ThreadPoolExecutor(removal.threads(), removal.threads(), 0, TimeUnit.MILLISECONDS,
                removal.queue() == 0 ? new SynchronousQueue<>() : new ArrayBlockingQueue<>(removal.queue()),
                r -> {
                    Thread t = new Thread(r, "agentexec-container-removal");
                    t.setDaemon(true);
                    return t;
                }, new ThreadPoolExecutor.AbortPolicy());
        this.shutdownHook = new Thread(this::removeOwnContainers, "agentexec-docker-cleanup");
        Runtime.getRuntime().addShutdownHook(shutdownHook);
    }

    /** A client for the daemon named by {@code DOCKER_HOST} (or the local socket). */
    public static DockerClient client() {
        DockerClientConfig config = DefaultDockerClientConfig.createDefaultConfigBuilder().build();
        ApacheDockerHttpClient http = new ApacheDockerHttpClient.Builder()
                .dockerHost(config.getDockerHost())
                .sslConfig(config.getSSLConfig())
                .maxConnections(64)
                .connectionTimeout(Duration.ofSeconds(5))
                .responseTimeout(Duration.ofSeconds(60))
                .build();
        return DockerClientImpl.getInstance(config, http);
    }

    /** True when a Docker daemon answers a ping. */
    public static boolean daemonAnswers(DockerClient client) {
        try {
            client.pingCmd().exec();
            return true;
        } catch (RuntimeException e) {
            return false;
        }
    }

    /** Connects, removes what crashed JVMs left behind, and starts filling the warm pool. */
    public static DockerBackend start(DockerBackendSettings settings, AgentBinary agent) {
        DockerClient client = client();
        if (!daemonAnswers(client)) {
            throw new SandboxUnavailableException("the Docker daemon at "
                    + DefaultDockerClientConfig.createDefaultConfigBuilder().build().getDockerHost()
                    + " does not answer (start dockerd, or set DOCKER_HOST)");
        }
        URI host = DefaultDockerClientConfig.createDefaultConfigBuilder().build().getDockerHost();
        DockerBackend backend = new DockerBackend(client, host, settings, agent);
        int reaped = backend.reapOrphans();
        if (reaped > 0) {
            log.info("removed {} sandbox container(s) left by processes that no longer run", reaped);
        }
        for (String image : settings.warmImages()) {
            backend.refill(image);
        }
        return backend;
    }

    @Override
    public String name() {
        return "docker";
    }

    public DockerClient dockerClient() {
        return client;
    }

    @Override
    public BackendSession open(SessionSpec spec) {
        if (closed) {
            throw new SandboxUnavailableException("the Docker backend is closed");
        }
        if (poolable(spec)) {
            ConcurrentLinkedDeque<DockerSession> pool = pools.get(spec.image());
            DockerSession warm;
            while (pool != null && (warm = pool.pollFirst()) != null) {
                refill(spec.image());
                if (warm.channel().isOpen()) {
                    try {
                        warm.applyLimits(spec.limits());
                        live.put(warm.containerId(), warm);
                        return warm;
                    } catch (RuntimeException e) {
                        log.warn("cannot change the limits of a warm container: {}", e.getMessage());
                    }
                }
                warm.close();
            }
            refill(spec.image());
        }
        DockerSession session = create(spec.sessionId(), spec.image(), spec.limits(), spec.dockerOptions());
        live.put(session.containerId(), session);
        return session;
    }

    /** A session can come from the pool when it asks for nothing that is fixed at container creation. */
    private boolean poolable(SessionSpec spec) {
        return settings.warmPoolSize() > 0
                && settings.warmImages().contains(spec.image())
                && spec.dockerOptions().equals(settings.defaults())
                && spec.limits().workspaceBytes() == settings.poolLimits().workspaceBytes();
    }

    private void refill(String image) {
        if (closed || settings.warmPoolSize() == 0 || !settings.warmImages().contains(image)) {
            return;
        }
        ConcurrentLinkedDeque<DockerSession> pool = pools.computeIfAbsent(image, k -> new ConcurrentLinkedDeque<>());
        AtomicInteger inFlight = refilling.computeIfAbsent(image, k -> new AtomicInteger());
        while (pool.size() + inFlight.get() < settings.warmPoolSize()) {
            inFlight.incrementAndGet();
            refiller.execute(() -> {
                try {
                    if (!closed) {
                        pool.addLast(create("sbx-" + UUID.randomUUID().toString().substring(0, 12), image,
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
    public Map<String, Integer> warmPoolSizes() {
        Map<String, Integer> sizes = new java.util.TreeMap<>();
        pools.forEach((image, pool) -> sizes.put(image, pool.size()));
        return sizes;
    }

    private DockerSession create(String sessionId, String image, Limits limits, DockerOptions options) {
        String volume = agentVolume(image);
        Map<String, String> tmpfs = new java.util.LinkedHashMap<>(options.tmpfs());
        tmpfs.put(settings.workspace(), workspaceTmpfsOptions(options.user(), limits.workspaceBytes()));
        HostConfig host = HostConfig.newHostConfig()
                .withNetworkMode(options.networkMode())
                .withReadonlyRootfs(options.readOnlyRootFilesystem())
                .withTmpFs(tmpfs)
                .withCapDrop(options.capDrop().stream().map(Capability::valueOf).toArray(Capability[]::new))
                .withSecurityOpts(options.noNewPrivileges() ? List.of("no-new-privileges") : List.of())
                .withPidsLimit(settings.hostPidsLimit(limits.pids(), options.runtime()))
                .withMemory(limits.memoryBytes())
                .withMemorySwap(limits.memoryBytes())
                .withCpuPeriod(CPU_PERIOD_MICROS)
                .withCpuQuota(cpuQuota(limits))
                .withMounts(List.of(new Mount().withType(MountType.VOLUME).withSource(volume)
                        .withTarget(AGENT_DIR).withReadOnly(true)))
                .withInit(false);
        options.runtime().ifPresent(host::withRuntime);
        CreateContainerCmd cmd = client.createContainerCmd(image)
                .withEntrypoint(AGENT_DIR + "/" + AGENT_FILE, "serve", "--contained", "--workspace", settings.workspace())
                .withCmd(List.of())
                .withUser(options.user())
                .withWorkingDir(settings.workspace())
                .withEnv("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")
                .withAttachStdin(true).withAttachStdout(true).withAttachStderr(true)
                // StdinOnce: when our attach connection drops (this JVM died), the agent reads EOF and the
                // container stops at once instead of idling until the reaper removes it.
                .withStdinOpen(true).withStdInOnce(true).withTty(false)
                .withLabels(Map.of(MANAGED_LABEL, "true", SESSION_LABEL, sessionId, ContainerOwner.LABEL, owner.label()))
                .withHostConfig(host);
        options.namePrefix().ifPresent(prefix -> cmd.withName(prefix + "-" + sessionId));
        String id;
        try {
            id = cmd.exec().getId();
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
            DockerSession session = new DockerSession(this, sessionId, id, attach, settings.workspace(), limits, options.runtime());
            attach.pumpTo(session.channel());
            client.startContainerCmd(id).exec();
            session.channel().awaitHello(settings.agentStartTimeout());
            return session;
        } catch (IOException | RuntimeException e) {
            remove(id);
            throw new SandboxUnavailableException("sandbox container from " + image + " did not start: " + e.getMessage(), e);
        }
    }

    private static String workspaceTmpfsOptions(String user, long bytes) {
        String base = "rw,nosuid,nodev,exec,size=" + bytes;
        if (user.matches("\\d+(:\\d+)?")) {
            String[] ids = user.split(":");
            return base + ",uid=" + ids[0] + ",gid=" + (ids.length > 1 ? ids[1] : ids[0]) + ",mode=0700";
        }
        return base + ",mode=1777";
    }

    /**
     * The agent reaches containers through a read-only named volume, filled once per agent build:
     * it works for any image and for remote daemons, and a read-only root filesystem forbids copying
     * into the container itself.
     */
    private synchronized String agentVolume(String image) {
        String name = "agentexec-agent-" + agent.sha256().substring(0, 16);
        if (name.equals(agentVolume)) {
            return name;
        }
        boolean exists;
        try {
            client.inspectVolumeCmd(name).exec();
            exists = true;
        } catch (NotFoundException e) {
            exists = false;
        }
        if (!exists) {
            client.createVolumeCmd().withName(name).withLabels(Map.of(MANAGED_LABEL, "true")).exec();
            String helper;
            try {
                helper = client.createContainerCmd(image)
                        .withEntrypoint("/nonexistent")
                        .withLabels(Map.of(MANAGED_LABEL, "true", ContainerOwner.LABEL, owner.label()))
                        .withHostConfig(HostConfig.newHostConfig().withNetworkMode("none").withMounts(List.of(
                                new Mount().withType(MountType.VOLUME).withSource(name).withTarget(AGENT_DIR))))
                        .exec().getId();
            } catch (NotFoundException e) {
                client.removeVolumeCmd(name).exec();
                throw new SandboxUnavailableException("image " + image + " is not present; build it with images/build.sh"
                        + " or pull it from a registry", e);
            }
            try {
                client.copyArchiveToContainerCmd(helper).withRemotePath(AGENT_DIR)
                        .withTarInputStream(new ByteArrayInputStream(tarOf(AGENT_FILE, agent.content()))).exec();
            } finally {
                remove(helper);
            }
        }
        agentVolume = name;
        return name;
    }

    /** A one-file ustar archive; enough for Docker's archive endpoint. */
    static byte[] tarOf(String name, byte[] content) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] header = new byte[512];
        put(header, 0, name);
        put(header, 100, "0000555");
        put(header, 108, "0000000");
        put(header, 116, "0000000");
        put(header, 124, String.format("%011o", content.length));
        put(header, 136, String.format("%011o", System.currentTimeMillis() / 1000));
        header[156] = '0';
        put(header, 257, "ustar");
        put(header, 263, "00");
        java.util.Arrays.fill(header, 148, 156, (byte) ' ');
        int sum = 0;
        for (byte b : header) {
            sum += b & 0xff;
        }
        put(header, 148, String.format("%06o", sum));
        header[154] = 0;
        header[155] = ' ';
        out.writeBytes(header);
        out.writeBytes(content);
        out.writeBytes(new byte[(512 - content.length % 512) % 512]);
        out.writeBytes(new byte[1024]);
        return out.toByteArray();
    }

    private static void put(byte[] header, int offset, String value) {
        byte[] bytes = value.getBytes(StandardCharsets.US_ASCII);
        System.arraycopy(bytes, 0, header, offset, bytes.length);
    }

    /** CFS quota for the CPU limit; the same period at creation and update, as Docker requires. */
    private static long cpuQuota(Limits limits) {
        return (long) Math.max(1000, limits.cpus() * CPU_PERIOD_MICROS);
    }

    boolean hasOwnKernel(Optional<String> runtime) {
        return settings.hasOwnKernel(runtime);
    }

    void updateLimits(String containerId, Limits limits, Optional<String> runtime) {
        client.updateContainerCmd(containerId)
                .withMemory(limits.memoryBytes())
                .withMemorySwap(limits.memoryBytes())
                .withCpuPeriod(CPU_PERIOD_MICROS)
                .withCpuQuota(cpuQuota(limits))
                .withPidsLimit(settings.hostPidsLimit(limits.pids(), runtime))
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
                Thread.sleep(50);
            }
        } catch (NotFoundException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    void forget(DockerSession session) {
        live.remove(session.containerId());
    }

    /**
     * Removes a stopped session's container in the background, so that whoever closed the session (a
     * one-off's reply) does not wait for the daemon. When the pool's queue is full, or the backend is
     * closing, the calling thread removes it. {@link #close} waits for what is pending.
     */
    void removeLater(String containerId) {
        try {
            remover.execute(() -> remove(containerId));
        } catch (RejectedExecutionException e) {
            remove(containerId);
        }
    }

    void remove(String containerId) {
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

    /** Removes managed containers whose owning JVM on this host has exited. */
    public int reapOrphans() {
        int removed = 0;
        for (Container c : managedContainers()) {
            String label = c.getLabels() == null ? null : c.getLabels().get(ContainerOwner.LABEL);
            boolean orphan = ContainerOwner.parse(label).map(ContainerOwner::isDeadOnThisHost).orElse(true);
            if (orphan) {
                remove(c.getId());
                removed++;
            }
        }
        return removed;
    }

    /** Managed containers on the daemon, of any owner, in any state. */
    public List<Container> managedContainers() {
        return client.listContainersCmd().withShowAll(true)
                .withLabelFilter(Map.of(MANAGED_LABEL, "true")).exec();
    }

    private void removeOwnContainers() {
        List<String> ids = new ArrayList<>(live.keySet());
        pools.values().forEach(pool -> pool.forEach(s -> ids.add(s.containerId())));
        try {
            for (Container c : managedContainers()) {
                String label = c.getLabels() == null ? "" : c.getLabels().getOrDefault(ContainerOwner.LABEL, "");
                if (label.equals(owner.label()) && !ids.contains(c.getId())) {
                    ids.add(c.getId());
                }
            }
        } catch (RuntimeException e) {
            log.warn("cannot list containers to clean up: {}", e.getMessage());
        }
        ids.parallelStream().forEach(this::remove);
    }

    public Set<String> liveContainerIds() {
        return Set.copyOf(live.keySet());
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        // Let in-flight creations finish (interrupting docker-java mid-call can orphan a container).
        refiller.shutdown();
        try {
            refiller.awaitTermination(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        pools.values().forEach(pool -> pool.forEach(DockerSession::closeQuietly));
        live.values().forEach(DockerSession::closeQuietly);
        // Pending removals (those of the sessions just closed too) finish before close returns.
        remover.shutdown();
        try {
            if (!remover.awaitTermination(settings.removal().closeWait().toMillis(), TimeUnit.MILLISECONDS)) {
                log.warn("container removals still pending after {}; removing what is left directly",
                        settings.removal().closeWait());
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        // Whatever is left of this process's (a removal that failed or timed out) goes now, found by its owner label.
        removeOwnContainers();
        try {
            Runtime.getRuntime().removeShutdownHook(shutdownHook);
        } catch (IllegalStateException e) {
            // already shutting down
        }
        try {
            client.close();
        } catch (IOException e) {
            log.debug("closing the Docker client: {}", e.getMessage());
        }
    }
}
