package io.agentexec.agents;

import com.typesafe.config.Config;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * AG2's {@code llm_config}: an OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, LM Studio all speak
 * it), or a {@code replay} model that answers from a scripted file and is labelled so in transcripts.
 * The API key is never stored here, only the name of the environment variable that holds it.
 *
 * @param apiKeyEnv   environment variable holding the key; empty for endpoints that need none
 * @param replayScript for {@link Kind#REPLAY}: the scripted replies file
 */
public record LlmConfig(Kind kind, String baseUrl, String model, Optional<String> apiKeyEnv, double temperature,
                        Duration requestTimeout, Optional<String> replayScript) implements AgentsSerializable {

    public enum Kind { OPENAI_COMPATIBLE, REPLAY }

    public LlmConfig {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(baseUrl, "baseUrl");
        Objects.requireNonNull(model, "model");
        Objects.requireNonNull(apiKeyEnv, "apiKeyEnv");
        Objects.requireNonNull(requestTimeout, "requestTimeout");
        Objects.requireNonNull(replayScript, "replayScript");
        if (kind == Kind.OPENAI_COMPATIBLE) {
            if (!baseUrl.startsWith("http://") && !baseUrl.startsWith("https://")) {
                throw new AgentConfigException("llm_config.base_url must be an http(s) URL, got '" + baseUrl + "'");
            }
            if (model.isBlank()) {
                throw new AgentConfigException("llm_config.model must not be blank");
            }
        }
        if (kind == Kind.REPLAY && replayScript.isEmpty()) {
            throw new AgentConfigException("llm_config.replay_script is required for the replay model");
        }
        if (!(temperature >= 0 && temperature <= 2)) {
            throw new AgentConfigException("llm_config.temperature must be between 0 and 2, got " + temperature);
        }
        if (requestTimeout.isNegative() || requestTimeout.isZero()) {
            throw new AgentConfigException("llm_config.timeout must be positive, got " + requestTimeout);
        }
    }

    public static LlmConfig openAi(String baseUrl, String model, String apiKeyEnv, double temperature,
                                   Duration requestTimeout) {
        return new LlmConfig(Kind.OPENAI_COMPATIBLE, baseUrl, model,
                apiKeyEnv.isBlank() ? Optional.empty() : Optional.of(apiKeyEnv), temperature, requestTimeout,
                Optional.empty());
    }

    public static LlmConfig replay(String scriptPath) {
        return new LlmConfig(Kind.REPLAY, "", "replay", Optional.empty(), 0, Duration.ofSeconds(1),
                Optional.of(scriptPath));
    }

    /** Reads {@code agentexec.agents.llm}: an endpoint if base-url is set, else the replay model if a script is. */
    public static Optional<LlmConfig> fromConfig(Config root) {
        Config c = root.getConfig("agentexec.agents.llm");
        if (!c.getString("base-url").isBlank()) {
            return Optional.of(openAi(c.getString("base-url"), c.getString("model"), c.getString("api-key-env"),
                    c.getDouble("temperature"), c.getDuration("request-timeout")));
        }
        if (!c.getString("replay-script").isBlank()) {
            return Optional.of(replay(c.getString("replay-script")));
        }
        return Optional.empty();
    }

    /** How transcripts name the model that wrote a message; replayed answers always say so. */
    public String label() {
        return kind == Kind.REPLAY ? "replay:" + replayScript.orElseThrow() : model;
    }

    public LlmConfig withTemperature(double value) {
        return new LlmConfig(kind, baseUrl, model, apiKeyEnv, value, requestTimeout, replayScript);
    }
}
