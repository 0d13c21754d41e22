package io.agentexec.sandbox;

import io.agentexec.sandbox.agent.AgentBinary;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.agent.RunSpec;
import io.agentexec.sandbox.backend.ImagePresence;
import io.agentexec.sandbox.backend.NodeOwner;
import io.agentexec.sandbox.backend.OwnerLiveness;
import io.agentexec.sandbox.backend.RuntimeHealth;
import io.agentexec.sandbox.backend.SandboxBackend;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.backend.SessionSpec;
import io.agentexec.sandbox.bwrap.BubblewrapBackend;
import io.agentexec.sandbox.docker.DockerBackend;
import io.agentexec.sandbox.docker.DockerClients;
import io.agentexec.sandbox.language.Language;
import io.agentexec.sandbox.local.UnsafeLocalBackend;
import io.agentexec.sandbox.model.BlockOutcome;
import io.agentexec.sandbox.model.CodeBlock;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The engine: picks a backend, opens sandbox sessions, and runs one-off requests in a fresh
 * session ({@link #oneOff}). Plain Java; the cluster wraps it in actors. What callers ask of the
 * backend (an image, its warm pool, its runtimes' health) they ask here, whichever backend it is.
 */
public final class SandboxEngine implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(SandboxEngine.class);

    private final EngineSettings settings;
    /**
     * The settings sessions get: {@link #settings} with zygotes decided (with {@code zygote.enabled = auto}, enabled
     * until the probe decides, see {@link ZygoteProbe}). Shared with the warm pool's primer.
     */
    private final AtomicReference<EngineSettings> effective;
    /** How blocks start here and why, for the node's log and /readyz. */
    private volatile String startPath;
    private final Optional<Thread> probe;
    private final SandboxBackend backend;
    /** Repeats one-off runs' cancels (see {@link OneOffRun#cancel}): one thread, a socket write per tick. */
    private final ScheduledExecutorService cancels;

    private SandboxEngine(EngineSettings settings, AtomicReference<EngineSettings> effective, SandboxBackend backend) {
        this.settings = settings;
        this.effective = effective;
        this.backend = backend;
        ScheduledThreadPoolExecutor cancels = new ScheduledThreadPoolExecutor(1, r -> {
            Thread t = new Thread(r, "agentexec-cancel");
            t.setDaemon(true);
            return t;
        });
        cancels.setRemoveOnCancelPolicy(true);
        this.cancels = cancels;
        ZygoteSettings z = settings.zygote();
        // The language measured: the first with a zygote (python, as shipped), where its blocks would fork here.
        Optional<Language> probed = settings.languages().all().stream()
                .filter(l -> l.zygote().isPresent()).findFirst()
                .filter(l -> SandboxSession.forks(settings, backend.name(), l, settings.defaultLimits()));
        if (z.auto() && probed.isPresent()) {
            startPath = "zygotes until the probe has measured this machine (agentexec.sandbox.zygote.enabled = auto)";
            Thread t = new Thread(() -> probeZygotes(probed.get()), "agentexec-zygote-probe");
            t.setDaemon(true);
            probe = Optional.of(t);
        } else {
            startPath = (effective.get().zygote().enabled() && probed.isPresent() ? "zygotes" : "plain starts")
                    + " (agentexec.sandbox.zygote.enabled = " + (z.auto() ? "auto, nothing to measure here" : z.enabled()) + ")";
            probe = Optional.empty();
        }
    }

    public static SandboxEngine start(EngineSettings settings) {
        return start(settings, Optional.empty());
    }

    /**
     * An engine working for the cluster node {@code node} when given: its sandboxes carry the node's address and uid,
     * so that whichever node shares their runtime can remove them once that node is gone ({@link #reapOrphans}).
     */
    public static SandboxEngine start(EngineSettings settings, Optional<NodeOwner> node) {
        AgentBinary agent = AgentBinary.load();
        AtomicReference<EngineSettings> effective = new AtomicReference<>(settings);
        SandboxBackend backend = switch (settings.backend()) {
            case DOCKER -> DockerBackend.start(settings.docker(), agent, node, primer(effective));
            case BWRAP -> BubblewrapBackend.start(settings.bwrap(), agent);
            case UNSAFE_LOCAL -> UnsafeLocalBackend.start(agent, settings.runtimeDirectory(), settings.bwrap().agentStartTimeout());
            case AUTO -> auto(settings, agent, node, effective);
        };
        log.info("sandbox engine started with the {} backend", backend.name());
        SandboxEngine engine = new SandboxEngine(settings, effective, backend);
        engine.probe.ifPresent(Thread::start);
        return engine;
    }

    private static SandboxBackend auto(EngineSettings settings, AgentBinary agent, Optional<NodeOwner> node,
                                       AtomicReference<EngineSettings> effective) {
        if (DockerClients.daemonAnswers()) {
            return DockerBackend.start(settings.docker(), agent, node, primer(effective));
        }
        if (BubblewrapBackend.available(settings.bwrap().executable())) {
            log.info("no Docker daemon answers; using bubblewrap");
            return BubblewrapBackend.start(settings.bwrap(), agent);
        }
        throw new SandboxUnavailableException("no sandbox backend is available: install and start Docker "
                + "(apt-get install docker.io && dockerd &) or install bubblewrap (apt-get install bubblewrap); "
                + "agentexec.sandbox.backend = unsafe-local runs code unisolated, for development only");
    }

    /**
     * For a pooled Docker image, the run whose pre-initialised interpreter its containers start before they are taken:
     * the zygote of the language whose default image it is (python's for the python image), so that a sandbox's or a
     * one-off's first block is a fork too. None where no such language has one, or zygotes are off (as the engine
     * decided when the container is primed).
     */
    private static Function<String, Optional<RunSpec>> primer(AtomicReference<EngineSettings> effective) {
        return image -> primer(effective.get(), image);
    }

    private static Optional<RunSpec> primer(EngineSettings settings, String image) {
        return settings.languages().all().stream()
                .filter(l -> l.image().equals(image) && l.zygote().isPresent())
                .findFirst()
                .flatMap(l -> SandboxSession.prime(settings, "docker", l, settings.docker().poolLimits(),
                        settings.docker().workspace()));
    }

    /** The settings as configured (with {@code zygote.enabled = auto} the engine decides: {@link #startPath}). */
    public EngineSettings settings() {
        return settings;
    }

    /**
     * How blocks of a language with a pre-initialised interpreter start on this engine, and why: forked from zygotes
     * or plainly started, as configured or as the start-up probe found cheaper here ({@link ZygoteProbe}).
     */
    public String startPath() {
        return startPath;
    }

    /**
     * {@code zygote.enabled = auto}: measures forks against plain starts in a sandbox of the language's default image,
     * then keeps the cheaper for every session opened after (sessions already open keep forking). A probe that fails
     * leaves zygotes on, as before it ran.
     */
    private void probeZygotes(Language language) {
        ZygoteSettings z = settings.zygote();
        if (cancels.isShutdown()) {
            return;
        }
        EngineSettings forking = settings.withZygote(z.withEnabled(true));
        EngineSettings plain = settings.withZygote(z.withEnabled(false));
        try (SandboxSession forks = openSession(language.image(), settings.defaultLimits(), settings.defaultOptions(),
                Optional.empty(), forking)) {
            SandboxSession starts = forks.withSettings(plain);
            ZygoteProbe.Trial trial = (zygote, blocks) -> {
                if (cancels.isShutdown()) {
                    throw new IllegalStateException("the engine closed");
                }
                ExecutionRequest.Builder request = ExecutionRequest.builder(settings.defaultLimits());
                for (int i = 0; i < blocks; i++) {
                    request.block(language.name(), "print(1)");
                }
                ExecutionResult r = (zygote ? forks : starts).execute(request.build());
                if (r.verdict() != Verdict.OK) {
                    throw new IllegalStateException("a probe block ended " + r.verdict() + ": " + r.message());
                }
                return (int) r.blocks().stream().filter(b -> BlockOutcome.ZYGOTE.equals(b.start())).count();
            };
            ZygoteProbe.Verdict verdict = ZygoteProbe.decide(
                    ZygoteProbe.measure(trial, ZygoteProbe.procStat(), System::nanoTime, z.probe()), z.probe().margin());
            effective.set(verdict.zygotes() ? forking : plain);
            startPath = verdict.detail() + " (agentexec.sandbox.zygote.enabled = auto)";
            log.info("pre-initialised interpreters: {}", startPath);
        } catch (RuntimeException e) {
            if (cancels.isShutdown()) {
                return; // the engine closed while measuring
            }
            startPath = "zygotes (agentexec.sandbox.zygote.enabled = auto; the probe failed: " + e.getMessage() + ")";
            log.warn("pre-initialised interpreters: the probe failed, zygotes stay on: {}", e.toString());
        }
    }

    public String backendName() {
        return backend.name();
    }

    public SandboxBackend backend() {
        return backend;
    }

    /**
     * The health check of each sandbox runtime this engine may use (Docker only; empty for other backends): a runtime
     * that failed it is refused to every request, naming the failure.
     */
    public List<RuntimeHealth> runtimeHealth() {
        return backend.runtimeHealth();
    }

    /** Ready sandboxes per image in the backend's warm pool, for metrics; empty without one. */
    public Map<String, Integer> warmPoolSizes() {
        return backend.warmPoolSizes();
    }

    /**
     * Whether sandboxes can be made from {@code image} here (UNKNOWN for a backend without images). May ask the Docker
     * daemon: not for an actor's thread.
     */
    public ImagePresence imagePresence(String image) {
        return backend.imagePresence(image);
    }

    /** The runtimes whose health check failed, each with its failure, for readiness reports; empty when none. */
    public List<String> runtimeProblems() {
        return runtimeHealth().stream().filter(h -> h.status() == RuntimeHealth.Status.UNHEALTHY)
                .map(h -> "sandbox runtime " + h.name() + " is unhealthy and refused: " + h.detail()).toList();
    }

    /**
     * Removes the sandboxes (of any engine sharing this one's runtime) whose owner is gone: a JVM of this host that
     * exited, an earlier incarnation of this engine's node, or a node {@code judge} says left the cluster. Asks the
     * daemon: not for an actor's thread. Returns how many were removed.
     */
    public int reapOrphans(OwnerLiveness judge) {
        return backend.reapOrphans(judge);
    }

    public Limits defaultLimits() {
        return settings.defaultLimits();
    }

    /** Opens a session in the default image of {@code language}, with default hardening. */
    public SandboxSession openSession(String language, Limits limits) {
        return openSession(imageFor(language), limits, settings.defaultOptions());
    }

    /** Opens a session in {@code image}; the options are checked against {@link EngineSettings#optionRules}. */
    public SandboxSession openSession(String image, Limits limits, SandboxOptions options) {
        return openSession(image, limits, options, Optional.empty());
    }

    /** A one-off's session: for an owner, it may be a recycled sandbox of that owner's (see {@link OneOffRun}). */
    SandboxSession openSession(String image, Limits limits, SandboxOptions options, Optional<String> owner) {
        return openSession(image, limits, options, owner, effective.get());
    }

    private SandboxSession openSession(String image, Limits limits, SandboxOptions options, Optional<String> owner,
                                       EngineSettings sessionSettings) {
        String id = "sbx-" + UUID.randomUUID().toString().substring(0, 12);
        return new SandboxSession(backend.open(new SessionSpec(id, image, limits, options, owner)), backend.name(),
                sessionSettings);
    }

    /** The image configured for a language (or its alias); the python image when the language is unknown. */
    public String imageFor(String language) {
        return settings.languages().find(language)
                .or(() -> settings.languages().find("python"))
                .map(Language::image)
                .orElseThrow(() -> new IllegalStateException("no languages are configured"));
    }

    /** The image a request runs in: its own, else its first block's language's (python without blocks). */
    public String imageFor(ExecutionRequest request) {
        String firstLanguage = request.blocks().stream().map(CodeBlock::language).findFirst().orElse("python");
        return request.image().orElseGet(() -> imageFor(firstLanguage));
    }

    /**
     * A request to run in a fresh sandbox with the default hardening, removed afterwards (AG2's per-call container):
     * nothing happens until {@link OneOffRun#execute}; the caller may cancel it from another thread and must close it.
     */
    public OneOffRun oneOff(ExecutionRequest request) {
        return oneOff(request, settings.defaultOptions());
    }

    /** As {@link #oneOff(ExecutionRequest)} with the sandbox's options (AG2's {@code docker_run_args}, checked). */
    public OneOffRun oneOff(ExecutionRequest request, SandboxOptions options) {
        return new OneOffRun(this, request, options, Optional.empty());
    }

    /**
     * As {@link #oneOff(ExecutionRequest)}, run for {@code owner} (the cluster passes the tenant): with the Docker
     * backend and the default hardening, its sandbox may be one that served the same owner's earlier one-offs and was
     * scrubbed since, and its own is scrubbed and kept for the owner's next one-off when its run ends cleanly
     * ({@code agentexec.sandbox.docker.recycle}). Never another owner's, unless the operator shares them.
     */
    public OneOffRun oneOff(ExecutionRequest request, Optional<String> owner) {
        return new OneOffRun(this, request, settings.defaultOptions(), owner);
    }

    /** Runs a request in a fresh sandbox that is removed afterwards (AG2's per-call container). */
    public ExecutionResult execute(ExecutionRequest request) {
        return execute(request, OutputListener.NONE);
    }

    public ExecutionResult execute(ExecutionRequest request, OutputListener listener) {
        try (OneOffRun run = oneOff(request)) {
            return run.execute(listener);
        }
    }

    /** Runs {@code task} every {@code interval} until the returned future is cancelled (one-off runs' cancels). */
    ScheduledFuture<?> repeatEvery(Duration interval, Runnable task) {
        return cancels.scheduleWithFixedDelay(task, interval.toNanos(), interval.toNanos(), TimeUnit.NANOSECONDS);
    }

    public Optional<Language> language(String nameOrAlias) {
        return settings.languages().find(nameOrAlias);
    }

    /**
     * Its owner closes the engine before the JVM exits, once what runs has finished (see
     * {@link SandboxBackend#ownerClosesAtExit}): the backend's JVM exit hook no longer removes the sandboxes at once.
     */
    public void ownerClosesAtExit() {
        backend.ownerClosesAtExit();
    }

    @Override
    public void close() {
        cancels.shutdownNow();
        // The probe stops before its next blocks; waited for (at most as long as one of its runs may take), so that
        // it opens no sandbox once the backend is closing.
        probe.ifPresent(t -> {
            t.interrupt();
            try {
                t.join(settings.agentBackstop().plus(settings.zygote().startTimeout())
                        .plus(settings.zygote().forkTimeout()).toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        backend.close();
    }
}
