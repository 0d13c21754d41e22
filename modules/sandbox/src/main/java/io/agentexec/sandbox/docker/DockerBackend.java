package io.agentexec.sandbox.docker;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.command.CreateContainerCmd;
import com.github.dockerjava.api.exception.ConflictException;
import com.github.dockerjava.api.exception.NotFoundException;
import com.github.dockerjava.api.model.Capability;
import com.github.dockerjava.api.model.Container;
import com.github.dockerjava.api.model.HostConfig;
import com.github.dockerjava.api.model.LogConfig;
import com.github.dockerjava.api.model.Mount;
import com.github.dockerjava.api.model.MountType;
import com.github.dockerjava.core.DefaultDockerClientConfig;
import com.github.dockerjava.core.DockerClientConfig;
import com.github.dockerjava.core.DockerClientImpl;
import com.github.dockerjava.httpclient5.ApacheDockerHttpClient;
import io.agentexec.sandbox.agent.AgentBinary;
import io.agentexec.sandbox.agent.AgentException;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.agent.RunOutcome;
import io.agentexec.sandbox.agent.RunSpec;
import io.agentexec.sandbox.backend.BackendSession;
import io.agentexec.sandbox.backend.SandboxBackend;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.backend.SessionSpec;
import io.agentexec.sandbox.model.InvalidRequestException;
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
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedDeque;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
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
    private static final String CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    /** Output a runtime health check keeps: enough for the error it reports. */
    private static final long PROBE_OUTPUT_BYTES = 4096;
    /**
     * How long a create or start may take the daemon (the client's response timeout), counted in the bound a
     * request waits for a runtime's pending health check.
     */
    private static final Duration DAEMON_CALL = Duration.ofSeconds(60);

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
    /** The health check of each runtime a sandbox may use (empty key: the daemon's default), begun at start. */
    private final Map<Optional<String>, CompletableFuture<RuntimeHealth>> runtimeHealth = new ConcurrentHashMap<>();
    private final ExecutorService prober;
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
        this.prober = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "agentexec-runtime-probe");
            t.setDaemon(true);
            return t;
        });
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
        backend.checkRuntimes();
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
        // The same rules the options were checked against when they came in, once more where they take effect.
        DockerOptions options = spec.dockerOptions().withUser(checkedUser(spec.dockerOptions().user()));
        settings.runtimeProblem(options.runtime()).ifPresent(problem -> {
            throw new InvalidRequestException("docker options: " + problem);
        });
        requireHealthy(options.runtime());
        if (poolable(spec, options)) {
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
        DockerSession session = create(spec.sessionId(), spec.image(), spec.limits(), options);
        live.put(session.containerId(), session);
        return session;
    }

    /** A session can come from the pool when it asks for nothing that is fixed at container creation. */
    private boolean poolable(SessionSpec spec, DockerOptions options) {
        return settings.warmPoolSize() > 0
                && settings.warmImages().contains(spec.image())
                && options.equals(settings.defaults())
                && spec.limits().workspaceBytes() == settings.poolLimits().workspaceBytes();
    }

    private void refill(String image) {
        if (closed || settings.warmPoolSize() == 0 || !settings.warmImages().contains(image)
                || health(settings.defaults().runtime()).status() == RuntimeHealth.Status.UNHEALTHY) {
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
                // The agent's stdout carries every frame: the user's output, downloaded files. A log driver would
                // keep all of it on the host (json-file: /var/lib/docker/containers/ID/ID-json.log, unrotated),
                // readable there after the tenant is gone. The attach stream does not need a log.
                .withLogConfig(new LogConfig(LogConfig.LoggingType.NONE))
                .withInit(false);
        options.runtime().ifPresent(host::withRuntime);
        CreateContainerCmd cmd = client.createContainerCmd(image)
                .withEntrypoint(AGENT_DIR + "/" + AGENT_FILE, "serve", "--contained", "--workspace", settings.workspace())
                .withCmd(List.of())
                .withUser(options.user())
                .withWorkingDir(settings.workspace())
                .withEnv("PATH=" + CONTAINER_PATH, "LANG=C.UTF-8")
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

    /** The user as Docker gets it ({@code UID:GID}), by the one user parser; refused if it could be root. */
    private static String checkedUser(String user) {
        try {
            return SandboxUser.parse(user).toString();
        } catch (IllegalArgumentException e) {
            throw new InvalidRequestException("docker options: user refused, it could run as root: " + e.getMessage());
        }
    }

    /** Starts the health check of every runtime a sandbox may use, one after the other, in the background. */
    private void checkRuntimes() {
        for (Optional<String> runtime : settings.usableRuntimes()) {
            CompletableFuture<RuntimeHealth> result = new CompletableFuture<>();
            runtimeHealth.put(runtime, result);
            if (!settings.runtimeProbe().enabled()) {
                result.complete(new RuntimeHealth(runtime, RuntimeHealth.Status.NOT_CHECKED,
                        "turned off (agentexec.sandbox.docker.runtime-probe.enabled)"));
                continue;
            }
            prober.execute(() -> {
                if (closed) {
                    result.complete(new RuntimeHealth(runtime, RuntimeHealth.Status.NOT_CHECKED, "the engine closed first"));
                    return;
                }
                RuntimeHealth health;
                try {
                    health = probe(runtime);
                } catch (RuntimeException e) {
                    health = new RuntimeHealth(runtime, RuntimeHealth.Status.UNHEALTHY, "the check failed: " + e);
                }
                switch (health.status()) {
                    case HEALTHY -> log.info("sandbox {}", health);
                    case UNHEALTHY -> log.warn("sandbox {}; requests for it are refused", health);
                    default -> log.warn("sandbox {}; it is used unchecked", health);
                }
                result.complete(health);
            });
        }
    }

    /**
     * A small health run in a real container of the runtime: {@code ls /proc}, then processes started one after the
     * other (what user code does all the time), each step within the configured bound.
     */
    private RuntimeHealth probe(Optional<String> runtime) {
        DockerBackendSettings.RuntimeProbe probe = settings.runtimeProbe();
        try {
            client.inspectImageCmd(probe.image()).exec();
        } catch (NotFoundException e) {
            return new RuntimeHealth(runtime, RuntimeHealth.Status.NOT_CHECKED, "the check's image " + probe.image()
                    + " is not present (images/build.sh, or agentexec.sandbox.docker.runtime-probe.image)");
        }
        Limits limits = settings.poolLimits().withTimeout(probe.timeout());
        DockerSession session;
        try {
            session = create("probe-" + UUID.randomUUID().toString().substring(0, 12), probe.image(), limits,
                    settings.defaults().withRuntime(runtime).withNamePrefix(Optional.empty()));
        } catch (RuntimeException e) {
            return new RuntimeHealth(runtime, RuntimeHealth.Status.UNHEALTHY, "a sandbox does not start: "
                    + String.valueOf(e.getMessage()).strip());
        }
        long started = System.nanoTime();
        try {
            RunOutcome ls = probeRun(session, limits, List.of("ls", "/proc"));
            if (ls.timedOut() || ls.exitCode() != 0) {
                return new RuntimeHealth(runtime, RuntimeHealth.Status.UNHEALTHY, "`ls /proc` "
                        + (ls.timedOut() ? "did not finish within " + probe.timeout().toSeconds() + " s"
                        : "failed (exit " + ls.exitCode() + "): "
                        + new String(ls.stderr(), java.nio.charset.StandardCharsets.UTF_8).strip()));
            }
            RunOutcome churn = probeRun(session, limits, List.of("sh", "-c",
                    "i=0; while [ $i -lt " + probe.spawns() + " ]; do ls /proc > /dev/null || exit 1; i=$((i+1)); done"));
            if (churn.timedOut() || churn.exitCode() != 0) {
                return new RuntimeHealth(runtime, RuntimeHealth.Status.UNHEALTHY, probe.spawns() + " processes started "
                        + "one after the other " + (churn.timedOut() ? "did not finish within " + probe.timeout().toSeconds()
                        + " s (a health bound, far above what a working runtime needs)" : "failed (exit "
                        + churn.exitCode() + "): " + new String(churn.stderr(), java.nio.charset.StandardCharsets.UTF_8).strip()));
            }
            return new RuntimeHealth(runtime, RuntimeHealth.Status.HEALTHY, "`ls /proc` and " + probe.spawns()
                    + " processes in " + Duration.ofNanos(System.nanoTime() - started).toMillis() + " ms");
        } catch (AgentException e) {
            return new RuntimeHealth(runtime, RuntimeHealth.Status.UNHEALTHY, "its sandbox failed: " + e.getMessage());
        } finally {
            session.close();
        }
    }

    private RunOutcome probeRun(DockerSession session, Limits limits, List<String> argv) {
        RunSpec spec = new RunSpec(argv, Map.of("PATH", CONTAINER_PATH, "LANG", "C.UTF-8"), settings.workspace(),
                new byte[0], limits.timeout().toMillis(), PROBE_OUTPUT_BYTES, PROBE_OUTPUT_BYTES, limits.workspaceBytes(),
                session.runProcessLimit(limits));
        return session.channel().run(spec, OutputListener.NONE, settings.agentStartTimeout());
    }

    /** The health of every runtime a sandbox may use, as known now (a check may still be running). */
    public List<RuntimeHealth> runtimeHealth() {
        List<RuntimeHealth> all = new ArrayList<>();
        for (Optional<String> runtime : settings.usableRuntimes()) {
            all.add(health(runtime));
        }
        return all;
    }

    private RuntimeHealth health(Optional<String> runtime) {
        CompletableFuture<RuntimeHealth> result = runtimeHealth.get(runtime);
        if (result == null) {
            return new RuntimeHealth(runtime, RuntimeHealth.Status.NOT_CHECKED, "not a runtime this engine uses");
        }
        return result.getNow(new RuntimeHealth(runtime, RuntimeHealth.Status.PENDING, "being checked"));
    }

    /**
     * The runtime's health once its check is done; waits for a check still running (at most as long as the check
     * itself can take).
     */
    public RuntimeHealth awaitRuntimeHealth(Optional<String> runtime) {
        CompletableFuture<RuntimeHealth> result = runtimeHealth.get(runtime);
        if (result == null) {
            return health(runtime);
        }
        DockerBackendSettings.RuntimeProbe probe = settings.runtimeProbe();
        Duration bound = DAEMON_CALL.plus(settings.agentStartTimeout()).plus(probe.timeout().plus(settings.agentStartTimeout())
                .multipliedBy(2)).multipliedBy(settings.usableRuntimes().size());
        try {
            return result.get(bound.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            return new RuntimeHealth(runtime, RuntimeHealth.Status.UNHEALTHY, "its check did not end within " + bound);
        } catch (ExecutionException e) {
            return new RuntimeHealth(runtime, RuntimeHealth.Status.UNHEALTHY, "its check failed: " + e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SandboxUnavailableException("interrupted while waiting for the health check of runtime "
                    + runtime.orElse("default"));
        }
    }

    /** Refuses a runtime whose health check failed, naming the failure; never uses it silently. */
    private void requireHealthy(Optional<String> runtime) {
        RuntimeHealth health = awaitRuntimeHealth(runtime);
        if (health.status() == RuntimeHealth.Status.UNHEALTHY) {
            throw new SandboxUnavailableException("the sandbox runtime " + health.name() + " failed its health check "
                    + "at engine start, so it is not used here: " + health.detail());
        }
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
        prober.shutdown();
        try {
            prober.awaitTermination(30, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
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
