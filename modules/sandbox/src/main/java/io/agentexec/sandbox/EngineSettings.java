package io.agentexec.sandbox;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueType;
import io.agentexec.sandbox.bwrap.BubblewrapSettings;
import io.agentexec.sandbox.docker.DockerBackendSettings;
import io.agentexec.sandbox.language.LanguageTable;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import io.agentexec.sandbox.options.OptionRules;
import io.agentexec.sandbox.options.SandboxUser;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * Everything the engine reads from {@code agentexec.sandbox} (see this module's reference.conf).
 *
 * @param cancelRetryInterval how often a one-off's cancel is repeated until its run ends ({@link OneOffRun#cancel})
 */
public record EngineSettings(
        BackendChoice backend,
        Limits defaultLimits,
        Map<String, String> runEnvironment,
        Duration agentBackstop,
        Duration cancelRetryInterval,
        Path runtimeDirectory,
        List<String> forbiddenPatterns,
        DockerBackendSettings docker,
        BubblewrapSettings bwrap,
        LanguageTable languages,
        ZygoteSettings zygote) {

    /** Which backend to use; {@code AUTO} takes Docker if its daemon answers, else bubblewrap. */
    public enum BackendChoice {
        AUTO, DOCKER, BWRAP, UNSAFE_LOCAL;

        public static BackendChoice parse(String text) {
            return switch (text.trim().toLowerCase(Locale.ROOT)) {
                case "auto" -> AUTO;
                case "docker" -> DOCKER;
                case "bwrap", "bubblewrap" -> BWRAP;
                case "unsafe-local" -> UNSAFE_LOCAL;
                default -> throw new IllegalArgumentException(
                        "unknown sandbox backend '" + text + "' (auto, docker, bwrap, unsafe-local)");
            };
        }
    }

    public EngineSettings {
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(defaultLimits, "defaultLimits");
        Objects.requireNonNull(cancelRetryInterval, "cancelRetryInterval");
        if (cancelRetryInterval.isNegative() || cancelRetryInterval.isZero()) {
            throw new IllegalArgumentException("agentexec.sandbox.cancel-retry-interval must be positive, got "
                    + cancelRetryInterval);
        }
        runEnvironment = Map.copyOf(runEnvironment);
        forbiddenPatterns = List.copyOf(forbiddenPatterns);
        Objects.requireNonNull(zygote, "zygote");
    }

    /** Loads {@code application.conf} / {@code reference.conf} with system-property and env overrides. */
    public static EngineSettings load() {
        return fromConfig(ConfigFactory.load());
    }

    public static EngineSettings fromConfig(Config root) {
        Config c = root.getConfig("agentexec.sandbox");
        Limits limits = limits(c.getConfig("default-limits"));
        Config d = c.getConfig("docker");
        Map<String, String> tmpfs = new LinkedHashMap<>();
        d.getObject("tmpfs").forEach((k, v) -> tmpfs.put(k, String.valueOf(v.unwrapped())));
        SandboxOptions options = new SandboxOptions(
                d.getString("network"),
                d.getBoolean("read-only-root"),
                tmpfs,
                user(d),
                d.getStringList("cap-drop"),
                d.getBoolean("no-new-privileges"),
                optional(d.getString("runtime")),
                Optional.empty());
        java.util.Set<String> allowedNetworks = new HashSet<>(d.getStringList("allowed-networks"));
        allowedNetworks.add("none");
        DockerBackendSettings docker = new DockerBackendSettings(
                options,
                d.getStringList("warm-pool.images"),
                d.getInt("warm-pool.size"),
                limits,
                d.getString("workspace"),
                d.getDuration("agent-start-timeout"),
                allowedNetworks,
                new HashSet<>(listOrCommaSeparated(d, "allowed-runtimes")),
                runtimeHostPids(d.getConfig("runtime-host-pids")),
                new DockerBackendSettings.Removal(d.getInt("removal.threads"), d.getInt("removal.queue"),
                        d.getDuration("removal.close-wait"), d.getInt("removal.batch"), d.getDuration("removal.interval")),
                new DockerBackendSettings.RuntimeProbe(d.getBoolean("runtime-probe.enabled"),
                        d.getString("runtime-probe.image"), d.getInt("runtime-probe.spawns"),
                        d.getDuration("runtime-probe.timeout")),
                new DockerBackendSettings.Pool(d.getInt("warm-pool.max-size"), d.getBytes("warm-pool.memory-budget"),
                        d.getDuration("warm-pool.demand-window"), d.getDouble("warm-pool.headroom"),
                        d.getDuration("warm-pool.idle-timeout"), d.getDuration("warm-pool.take-timeout"),
                        d.getDuration("warm-pool.tick")),
                d.getInt("max-concurrent-creates"),
                new DockerBackendSettings.Recycle(d.getBoolean("recycle.enabled"),
                        d.getBoolean("recycle.share-across-tenants"), d.getInt("recycle.max-uses"),
                        d.getInt("recycle.max-idle-per-tenant"), d.getBoolean("recycle.keep-zygote"),
                        d.getDuration("recycle.kill-wait"), d.getDuration("recycle.scrub-timeout")));
        Config b = c.getConfig("bwrap");
        BubblewrapSettings bwrap = new BubblewrapSettings(
                b.getString("executable"),
                b.getStringList("read-only-binds"),
                Path.of(b.getString("cgroup-root")),
                b.getString("cgroup-parent"),
                b.getBytes("tmp-size"),
                b.getBytes("shm-size"),
                b.getString("workspace"),
                b.getString("user"),
                b.getString("host-user"),
                b.getDuration("agent-start-timeout"),
                Path.of(c.getString("runtime-directory")));
        Map<String, String> env = new LinkedHashMap<>();
        c.getObject("run-environment").forEach((k, v) -> env.put(k, String.valueOf(v.unwrapped())));
        return new EngineSettings(
                BackendChoice.parse(c.getString("backend")),
                limits,
                env,
                c.getDuration("agent-backstop"),
                c.getDuration("cancel-retry-interval"),
                Path.of(c.getString("runtime-directory")),
                c.getStringList("policy.forbidden-patterns"),
                docker,
                bwrap,
                LanguageTable.fromConfig(c),
                zygote(c.getConfig("zygote")));
    }

    public EngineSettings withBackend(BackendChoice choice) {
        return new EngineSettings(choice, defaultLimits, runEnvironment, agentBackstop, cancelRetryInterval,
                runtimeDirectory, forbiddenPatterns, docker, bwrap, languages, zygote);
    }

    public EngineSettings withForbiddenPatterns(List<String> patterns) {
        return new EngineSettings(backend, defaultLimits, runEnvironment, agentBackstop, cancelRetryInterval,
                runtimeDirectory, patterns, docker, bwrap, languages, zygote);
    }

    public EngineSettings withDocker(DockerBackendSettings value) {
        return new EngineSettings(backend, defaultLimits, runEnvironment, agentBackstop, cancelRetryInterval,
                runtimeDirectory, forbiddenPatterns, value, bwrap, languages, zygote);
    }

    public EngineSettings withLanguages(LanguageTable value) {
        return new EngineSettings(backend, defaultLimits, runEnvironment, agentBackstop, cancelRetryInterval,
                runtimeDirectory, forbiddenPatterns, docker, bwrap, value, zygote);
    }

    public EngineSettings withZygote(ZygoteSettings value) {
        return new EngineSettings(backend, defaultLimits, runEnvironment, agentBackstop, cancelRetryInterval,
                runtimeDirectory, forbiddenPatterns, docker, bwrap, languages, value);
    }

    /**
     * The same settings with another warm-pool size (0 for one-shot use such as the CLI); backends without a warm
     * pool ignore it.
     */
    public EngineSettings withWarmPoolSize(int size) {
        return withDocker(docker.withWarmPoolSize(size));
    }

    /** The engine's hardening of every sandbox, unless a sandbox's options say otherwise (within {@link #optionRules}). */
    public SandboxOptions defaultOptions() {
        return docker.defaults();
    }

    /** What sandbox options may ask for: the one judge of AG2's run args and of options given directly. */
    public OptionRules optionRules() {
        return docker.rules();
    }

    static ZygoteSettings zygote(Config c) {
        return new ZygoteSettings(
                ZygoteSettings.Mode.parse(c.getString("enabled")),
                c.getBytes("min-memory"),
                c.getInt("forks-per-zygote"),
                c.getInt("max-restarts"),
                c.getDuration("start-timeout"),
                c.getDuration("fork-timeout"),
                new ZygoteSettings.Probe(c.getInt("probe.blocks"), c.getInt("probe.rounds"), c.getDouble("probe.margin")));
    }

    static Limits limits(Config c) {
        return new Limits(
                c.getDuration("timeout"),
                c.getBytes("memory"),
                c.getDouble("cpus"),
                c.getInt("pids"),
                c.getBytes("output-bytes"),
                c.getBytes("workspace"));
    }

    /** The default user of sandbox containers, read by the one parser of users (refused at start if it could be root). */
    private static String user(Config docker) {
        try {
            return SandboxUser.parse(docker.getString("user")).toString();
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("agentexec.sandbox.docker.user (AGENTEXEC_DOCKER_USER) refused, it could "
                    + "run sandboxes as root: " + e.getMessage(), e);
        }
    }

    /** A list in HOCON, or one comma-separated string (how an environment variable gives a list). */
    private static List<String> listOrCommaSeparated(Config c, String path) {
        if (c.getValue(path).valueType() == ConfigValueType.STRING) {
            return Arrays.stream(c.getString(path).split(",")).map(String::trim).filter(v -> !v.isEmpty()).toList();
        }
        return c.getStringList(path);
    }

    private static Optional<String> optional(String value) {
        return value.isBlank() ? Optional.empty() : Optional.of(value);
    }

    private static Map<String, Integer> runtimeHostPids(Config c) {
        Map<String, Integer> byRuntime = new LinkedHashMap<>();
        c.root().keySet().forEach(runtime -> byRuntime.put(runtime, c.getInt(runtime)));
        return byRuntime;
    }
}
