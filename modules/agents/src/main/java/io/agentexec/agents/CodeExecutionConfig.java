package io.agentexec.agents;

import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.options.OptionRules;
import io.agentexec.sandbox.options.RunArgs;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * AG2's {@code code_execution_config}, every key the seed uses: {@code work_dir}, {@code use_docker}
 * (true, an image name, or false), {@code timeout} (seconds), {@code last_n_messages} (an integer or
 * {@code "auto"}), {@code docker_image}, {@code docker_container_name}, {@code docker_run_args}.
 *
 * @param timeout empty: the resource profile's timeout
 * @param image   the image to run in (use_docker's name wins over docker_image); empty: the language's default
 */
public record CodeExecutionConfig(String workDir, Isolation isolation, Optional<Duration> timeout,
                                  LastNMessages lastNMessages, Optional<String> image,
                                  Optional<String> containerName, List<String> dockerRunArgs)
        implements AgentsSerializable {

    public static final Set<String> KEYS = Set.of("work_dir", "use_docker", "timeout", "last_n_messages",
            "docker_image", "docker_container_name", "docker_run_args");
    private static final String DEFAULT_WORK_DIR = "coding";

    public CodeExecutionConfig {
        Objects.requireNonNull(workDir, "workDir");
        Objects.requireNonNull(isolation, "isolation");
        Objects.requireNonNull(timeout, "timeout");
        Objects.requireNonNull(lastNMessages, "lastNMessages");
        Objects.requireNonNull(image, "image");
        Objects.requireNonNull(containerName, "containerName");
        dockerRunArgs = List.copyOf(dockerRunArgs);
        if (workDir.isBlank() || workDir.contains("..") || workDir.startsWith("/")) {
            throw new AgentConfigException("code_execution_config.work_dir must be a relative name, got '" + workDir + "'");
        }
        timeout.ifPresent(t -> {
            if (t.compareTo(Duration.ofSeconds(1)) < 0) {
                throw new AgentConfigException("code_execution_config.timeout must be at least 1 (second), got " + t.toSeconds());
            }
        });
        containerName.ifPresent(name -> {
            try {
                OptionRules.containerName(name);
            } catch (InvalidRequestException e) {
                throw new AgentConfigException("code_execution_config.docker_container_name: " + e.getMessage());
            }
        });
        if (!dockerRunArgs.isEmpty()) {
            checkRunArgs(dockerRunArgs);
        }
    }

    /** Docker, the language's default image, AG2's defaults for the rest. */
    public static CodeExecutionConfig defaults() {
        return new CodeExecutionConfig(DEFAULT_WORK_DIR, Isolation.DOCKER, Optional.empty(), LastNMessages.auto(),
                Optional.empty(), Optional.empty(), List.of());
    }

    /**
     * Reads the dict an AG2 user writes. Every error names its key; unknown keys are errors, so that a
     * misspelt setting is never silently ignored.
     */
    public static CodeExecutionConfig fromMap(Map<String, ?> map) {
        Objects.requireNonNull(map, "code_execution_config");
        for (String key : map.keySet()) {
            if (!KEYS.contains(key)) {
                throw new AgentConfigException("code_execution_config: unknown key '" + key + "' (known: "
                        + KEYS.stream().sorted().toList() + ")");
            }
        }
        String workDir = map.containsKey("work_dir") ? string(map, "work_dir") : DEFAULT_WORK_DIR;
        Isolation isolation = Isolation.DOCKER;
        Optional<String> image = Optional.empty();
        Object useDocker = map.get("use_docker");
        if (useDocker instanceof Boolean b) {
            isolation = b ? Isolation.DOCKER : Isolation.BWRAP;
        } else if (useDocker instanceof String s) {
            if (s.isBlank()) {
                throw new AgentConfigException("code_execution_config.use_docker: an image name must not be blank");
            }
            image = Optional.of(s);
        } else if (useDocker != null) {
            throw new AgentConfigException("code_execution_config.use_docker must be true, false or an image name, got "
                    + describe(useDocker));
        }
        if (map.containsKey("docker_image") && image.isEmpty()) {
            image = Optional.of(string(map, "docker_image"));
        }
        Optional<Duration> timeout = Optional.empty();
        if (map.containsKey("timeout")) {
            Object t = map.get("timeout");
            if (!(t instanceof Number n) || n.doubleValue() != Math.rint(n.doubleValue())) {
                throw new AgentConfigException("code_execution_config.timeout must be a whole number of seconds, got " + describe(t));
            }
            if (n.longValue() < 1) {
                throw new AgentConfigException("code_execution_config.timeout must be at least 1 (second), got " + n);
            }
            timeout = Optional.of(Duration.ofSeconds(n.longValue()));
        }
        LastNMessages lastN = LastNMessages.auto();
        if (map.containsKey("last_n_messages")) {
            Object v = map.get("last_n_messages");
            if ("auto".equals(v)) {
                lastN = LastNMessages.auto();
            } else if (v instanceof Integer || v instanceof Long || v instanceof Short) {
                long n = ((Number) v).longValue();
                if (n < 0 || n > Integer.MAX_VALUE) {
                    throw new AgentConfigException("code_execution_config.last_n_messages must be a non-negative integer or 'auto', got " + n);
                }
                lastN = LastNMessages.of((int) n);
            } else {
                throw new AgentConfigException("code_execution_config.last_n_messages must be a non-negative integer or 'auto', got "
                        + describe(v));
            }
        }
        Optional<String> containerName = map.containsKey("docker_container_name")
                ? Optional.of(string(map, "docker_container_name")) : Optional.empty();
        List<String> runArgs = new ArrayList<>();
        if (map.containsKey("docker_run_args")) {
            if (!(map.get("docker_run_args") instanceof List<?> list)) {
                throw new AgentConfigException("code_execution_config.docker_run_args must be a list of strings, got "
                        + describe(map.get("docker_run_args")));
            }
            for (Object o : list) {
                if (!(o instanceof String s)) {
                    throw new AgentConfigException("code_execution_config.docker_run_args must be a list of strings, got an element "
                            + describe(o));
                }
                runArgs.add(s);
            }
        }
        return new CodeExecutionConfig(workDir, isolation, timeout, lastN, image, containerName, runArgs);
    }

    /** The same dict again, for printing and for the README's side-by-side. */
    public Map<String, Object> toMap() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("work_dir", workDir);
        m.put("use_docker", isolation == Isolation.DOCKER ? image.<Object>map(i -> i).orElse(true) : false);
        timeout.ifPresent(t -> m.put("timeout", t.toSeconds()));
        m.put("last_n_messages", lastNMessages instanceof LastNMessages.Count c ? c.value() : "auto");
        containerName.ifPresent(n -> m.put("docker_container_name", n));
        if (!dockerRunArgs.isEmpty()) {
            m.put("docker_run_args", dockerRunArgs);
        }
        return m;
    }

    public CodeExecutionConfig withIsolation(Isolation value) {
        return new CodeExecutionConfig(workDir, value, timeout, lastNMessages, image, containerName, dockerRunArgs);
    }

    /** Checks docker_run_args against the engine's configured policy, so a bad flag fails when the agent is made. */
    private static void checkRunArgs(List<String> args) {
        EngineSettings engine = EngineSettings.load();
        Limits limits = engine.defaultLimits();
        try {
            RunArgs.apply(args, limits, engine.optionRules());
        } catch (InvalidRequestException e) {
            throw new AgentConfigException("code_execution_config." + e.getMessage());
        }
    }

    private static String string(Map<String, ?> map, String key) {
        Object v = map.get(key);
        if (!(v instanceof String s) || s.isBlank()) {
            throw new AgentConfigException("code_execution_config." + key + " must be a non-empty string, got " + describe(v));
        }
        return s;
    }

    private static String describe(Object v) {
        return v == null ? "null" : v.getClass().getSimpleName() + " " + v;
    }
}
