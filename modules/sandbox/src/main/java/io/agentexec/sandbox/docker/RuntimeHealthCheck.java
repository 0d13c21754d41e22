package io.agentexec.sandbox.docker;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.exception.NotFoundException;
import io.agentexec.sandbox.agent.AgentException;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.agent.RunOutcome;
import io.agentexec.sandbox.agent.RunSpec;
import io.agentexec.sandbox.backend.RuntimeHealth;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.model.Limits;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The health check of each OCI runtime a sandbox may use (the configured one and the allowed ones), begun at start in
 * the background: a small run in a real container of the runtime ({@code ls /proc}, then processes started one after
 * the other, what user code does all the time), each step within the configured bound. A runtime that fails it is
 * logged, reported, and refused to every request naming the failure; a request for a runtime whose check is still
 * running waits for it.
 */
final class RuntimeHealthCheck implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(RuntimeHealthCheck.class);
    /** Output a check keeps: enough for the error it reports. */
    private static final long PROBE_OUTPUT_BYTES = 4096;
    /** How long closing waits for a check in progress (it stops at its own bounds). */
    private static final long CLOSE_WAIT_SECONDS = 30;

    private final DockerClient client;
    private final DockerBackendSettings settings;
    private final ContainerLauncher launcher;
    private final Map<Optional<String>, CompletableFuture<RuntimeHealth>> results = new ConcurrentHashMap<>();
    private final ExecutorService prober;
    private volatile boolean closed;

    RuntimeHealthCheck(DockerClient client, DockerBackendSettings settings, ContainerLauncher launcher) {
        this.client = client;
        this.settings = settings;
        this.launcher = launcher;
        this.prober = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "agentexec-runtime-probe");
            t.setDaemon(true);
            return t;
        });
    }

    /** Starts the check of every runtime a sandbox may use, one after the other, in the background. */
    void start() {
        for (Optional<String> runtime : settings.usableRuntimes()) {
            CompletableFuture<RuntimeHealth> result = new CompletableFuture<>();
            results.put(runtime, result);
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
            session = launcher.launch("probe-" + UUID.randomUUID().toString().substring(0, 12), probe.image(), limits,
                    settings.defaults().withRuntime(runtime).withNamePrefix(Optional.empty()));
        } catch (RuntimeException e) {
            return new RuntimeHealth(runtime, RuntimeHealth.Status.UNHEALTHY, "a sandbox does not start: "
                    + String.valueOf(e.getMessage()).strip());
        }
        long started = System.nanoTime();
        try {
            RunOutcome ls = run(session, limits, List.of("ls", "/proc"));
            if (ls.timedOut() || ls.exitCode() != 0) {
                return new RuntimeHealth(runtime, RuntimeHealth.Status.UNHEALTHY, "`ls /proc` "
                        + (ls.timedOut() ? "did not finish within " + probe.timeout().toSeconds() + " s"
                        : "failed (exit " + ls.exitCode() + "): " + new String(ls.stderr(), StandardCharsets.UTF_8).strip()));
            }
            RunOutcome churn = run(session, limits, List.of("sh", "-c",
                    "i=0; while [ $i -lt " + probe.spawns() + " ]; do ls /proc > /dev/null || exit 1; i=$((i+1)); done"));
            if (churn.timedOut() || churn.exitCode() != 0) {
                return new RuntimeHealth(runtime, RuntimeHealth.Status.UNHEALTHY, probe.spawns() + " processes started "
                        + "one after the other " + (churn.timedOut() ? "did not finish within " + probe.timeout().toSeconds()
                        + " s (a health bound, far above what a working runtime needs)" : "failed (exit "
                        + churn.exitCode() + "): " + new String(churn.stderr(), StandardCharsets.UTF_8).strip()));
            }
            return new RuntimeHealth(runtime, RuntimeHealth.Status.HEALTHY, "`ls /proc` and " + probe.spawns()
                    + " processes in " + Duration.ofNanos(System.nanoTime() - started).toMillis() + " ms");
        } catch (AgentException e) {
            return new RuntimeHealth(runtime, RuntimeHealth.Status.UNHEALTHY, "its sandbox failed: " + e.getMessage());
        } finally {
            session.close();
        }
    }

    private RunOutcome run(DockerSession session, Limits limits, List<String> argv) {
        RunSpec spec = new RunSpec(argv, ContainerSpec.AGENT_ENVIRONMENT, settings.workspace(), new byte[0],
                limits.timeout().toMillis(), PROBE_OUTPUT_BYTES, PROBE_OUTPUT_BYTES, limits.workspaceBytes(),
                session.runProcessLimit(limits));
        return session.channel().run(spec, OutputListener.NONE, settings.agentStartTimeout());
    }

    /** The health of every runtime a sandbox may use, as known now (a check may still be running). */
    List<RuntimeHealth> all() {
        List<RuntimeHealth> all = new ArrayList<>();
        for (Optional<String> runtime : settings.usableRuntimes()) {
            all.add(now(runtime));
        }
        return all;
    }

    /** The runtime's health as known now. */
    RuntimeHealth now(Optional<String> runtime) {
        CompletableFuture<RuntimeHealth> result = results.get(runtime);
        if (result == null) {
            return new RuntimeHealth(runtime, RuntimeHealth.Status.NOT_CHECKED, "not a runtime this engine uses");
        }
        return result.getNow(new RuntimeHealth(runtime, RuntimeHealth.Status.PENDING, "being checked"));
    }

    /**
     * The runtime's health once its check is done; waits for a check still running (at most as long as the checks
     * before it and itself can take).
     */
    RuntimeHealth await(Optional<String> runtime) {
        CompletableFuture<RuntimeHealth> result = results.get(runtime);
        if (result == null) {
            return now(runtime);
        }
        DockerBackendSettings.RuntimeProbe probe = settings.runtimeProbe();
        // Each check: the container's create and start (a daemon call), the agent's greeting, and its two runs.
        Duration bound = DockerClients.RESPONSE_TIMEOUT.plus(settings.agentStartTimeout())
                .plus(probe.timeout().plus(settings.agentStartTimeout()).multipliedBy(2))
                .multipliedBy(settings.usableRuntimes().size());
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
    void requireHealthy(Optional<String> runtime) {
        RuntimeHealth health = await(runtime);
        if (health.status() == RuntimeHealth.Status.UNHEALTHY) {
            throw new SandboxUnavailableException("the sandbox runtime " + health.name() + " failed its health check "
                    + "at engine start, so it is not used here: " + health.detail());
        }
    }

    /** Lets a check in progress end (its container is removed with it); checks not begun report the close. */
    @Override
    public void close() {
        closed = true;
        prober.shutdown();
        try {
            prober.awaitTermination(CLOSE_WAIT_SECONDS, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
