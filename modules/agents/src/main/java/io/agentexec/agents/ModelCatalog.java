package io.agentexec.agents;

import com.typesafe.config.Config;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The models remote clients may name in {@code llm_config.model}: the operator decides endpoints and
 * key variables, clients only pick a name. {@code default} is {@code agentexec.agents.llm} (when set);
 * {@code replay-median} is the bundled, labelled replay script of the seed's median task (for offline
 * demos and tests); more come from {@code agentexec.agents.conversations.models}.
 */
public final class ModelCatalog {
    public static final String DEFAULT = "default";
    public static final String BUNDLED_REPLAY = "replay-median";

    private final Map<String, LlmConfig> models;

    public ModelCatalog(Map<String, LlmConfig> models) {
        this.models = new TreeMap<>(models);
    }

    /**
     * Reads {@code agentexec.agents.llm} and {@code agentexec.agents.conversations.models}: each entry is
     * either {@code {base-url, model, api-key-env, temperature, request-timeout}} or {@code {replay-script}}.
     */
    public static ModelCatalog fromConfig(Config root) {
        Map<String, LlmConfig> models = new TreeMap<>();
        LlmConfig.fromConfig(root).ifPresent(m -> models.put(DEFAULT, m));
        models.put(BUNDLED_REPLAY, LlmConfig.replay(bundledMedianReplay().toString()));
        Config entries = root.getConfig("agentexec.agents.conversations.models");
        for (String name : entries.root().keySet()) {
            Config c = entries.getConfig("\"" + name + "\"");
            if (c.hasPath("replay-script")) {
                models.put(name, LlmConfig.replay(c.getString("replay-script")));
            } else {
                models.put(name, LlmConfig.openAi(c.getString("base-url"), c.getString("model"),
                        c.hasPath("api-key-env") ? c.getString("api-key-env") : "",
                        c.hasPath("temperature") ? c.getDouble("temperature") : 0.0,
                        c.hasPath("request-timeout") ? c.getDuration("request-timeout")
                                : root.getDuration("agentexec.agents.llm.request-timeout")));
            }
        }
        return new ModelCatalog(models);
    }

    public List<String> names() {
        return List.copyOf(models.keySet());
    }

    /** The model called {@code name}; an {@link AgentConfigException} listing the names otherwise. */
    public LlmConfig find(String name) {
        return Optional.ofNullable(models.get(name)).orElseThrow(() -> new AgentConfigException(
                "assistant.llm_config.model: no model '" + name + "' on this node (models: " + names()
                        + (models.containsKey(DEFAULT) ? "" : "; 'default' needs AGENTEXEC_LLM_BASE_URL") + ")"));
    }

    /**
     * The seed's median task as a replay script, unpacked once per JVM (the replay model reads files).
     * A fixed path, kept after exit: chats record the path and a chat resumed by a later JVM reads it again.
     */
    public static synchronized Path bundledMedianReplay() {
        if (bundled.isEmpty()) {
            try (InputStream script = ModelCatalog.class.getResourceAsStream("/io/agentexec/agents/cli/median.replay")) {
                Path dir = Files.createDirectories(Path.of(System.getProperty("java.io.tmpdir"), "agentexec-replay"));
                Path file = dir.resolve("median.replay");
                Files.copy(script, file, StandardCopyOption.REPLACE_EXISTING);
                bundled = Optional.of(file);
            } catch (IOException e) {
                throw new IllegalStateException("cannot unpack the bundled replay script", e);
            }
        }
        return bundled.get();
    }

    private static Optional<Path> bundled = Optional.empty();
}
