package io.agentexec.agents;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.Set;
import io.agentexec.cluster.executors.SeedExecutors;

/**
 * A two-agent chat as a client sends it over the network (the gateway's {@code POST /v1/conversations}):
 * the seed's {@code code_executor.initiate_chat(assistant, message)} as JSON.
 * <pre>
 * {"assistant":  {"name": "coding_assistant", "system_message": "...", "llm_config": {"model": "default"}},
 *  "user_proxy": {"name": "code_executor", "human_input_mode": "NEVER",
 *                 "code_execution_config": {"work_dir": "python_workspace", "use_docker": true}},
 *  "max_turns": 6}
 * </pre>
 * The user proxy takes the seed's executors as every request does: {@code policy} (a preset such as {@code "secure"},
 * or a list of patterns), {@code retries} (attempts of a failing execution), {@code profile} (or the older
 * {@code resource_profile}) and {@code cache} (true: the tenant's result cache).
 * A remote client never names an endpoint, an API-key variable or a file: {@code llm_config.model} is a
 * name from the operator's {@link ModelCatalog}, so a tenant cannot send this node's keys to a URL of its
 * choosing nor read its files through a replay script. Every error names its key; unknown keys are errors.
 *
 * @param initiator the user proxy (it sends the first message, as in the seed)
 * @param recipient the assistant
 */
public record ConversationSpec(AgentDefinition initiator, AgentDefinition recipient, OptionalInt maxTurns) {

    private static final Set<String> TOP = Set.of("assistant", "user_proxy", "max_turns");
    private static final Set<String> ASSISTANT = Set.of("name", "system_message", "llm_config",
            "max_consecutive_auto_reply", "is_termination_msg");
    private static final Set<String> USER_PROXY = Set.of("name", "human_input_mode", "code_execution_config",
            "max_consecutive_auto_reply", "is_termination_msg", "human_input_timeout", "default_auto_reply",
            "forbidden_patterns", "resource_profile", "system_message", "policy", "retries", "profile", "cache");
    private static final Set<String> LLM = Set.of("model", "temperature");

    public ConversationSpec {
        Objects.requireNonNull(initiator, "initiator");
        Objects.requireNonNull(recipient, "recipient");
        Objects.requireNonNull(maxTurns, "maxTurns");
    }

    /** Reads the document; fails with {@link AgentConfigException} naming the key at fault. */
    public static ConversationSpec fromJson(JsonNode doc, ModelCatalog models, AgentsSettings settings,
                                            SeedExecutors executors) {
        object(doc, "config");
        keys(doc, TOP, "config");
        JsonNode a = doc.get("assistant");
        JsonNode u = doc.get("user_proxy");
        if (a == null) {
            throw new AgentConfigException("config.assistant is required");
        }
        if (u == null) {
            throw new AgentConfigException("config.user_proxy is required");
        }
        object(a, "assistant");
        keys(a, ASSISTANT, "assistant");
        object(u, "user_proxy");
        keys(u, USER_PROXY, "user_proxy");

        JsonNode llm = a.get("llm_config");
        if (llm == null) {
            throw new AgentConfigException("assistant.llm_config is required (e.g. {\"model\": \"default\"}; models: "
                    + models.names() + ")");
        }
        object(llm, "assistant.llm_config");
        keys(llm, LLM, "assistant.llm_config");
        LlmConfig llmConfig = models.find(text(llm, "model", "assistant.llm_config"));
        if (llm.has("temperature")) {
            JsonNode t = llm.get("temperature");
            if (!t.isNumber()) {
                throw new AgentConfigException("assistant.llm_config.temperature must be a number");
            }
            llmConfig = llmConfig.withTemperature(t.asDouble());
        }
        String assistantName = text(a, "name", "assistant");
        java.util.Optional<String> systemMessage = a.has("system_message")
                ? java.util.Optional.of(text(a, "system_message", "assistant")) : java.util.Optional.empty();
        AgentDefinition assistant = AssistantAgent.define(assistantName, systemMessage, llmConfig, o -> {
            if (a.has("max_consecutive_auto_reply")) {
                o.maxConsecutiveAutoReply(integer(a, "max_consecutive_auto_reply", "assistant"));
            }
            if (a.has("is_termination_msg")) {
                o.isTerminationMsg(new TerminationCheck(text(a, "is_termination_msg", "assistant"),
                        TerminationCheck.Match.ENDS_WITH));
            }
            return o;
        }, settings);

        String proxyName = text(u, "name", "user_proxy");
        AgentDefinition proxy = UserProxyAgent.define(proxyName, o -> {
            if (u.has("human_input_mode")) {
                o.humanInputMode(text(u, "human_input_mode", "user_proxy"));
            }
            if (u.has("code_execution_config")) {
                JsonNode c = u.get("code_execution_config");
                if (c.isBoolean() && !c.asBoolean()) {
                    o.noCodeExecution();
                } else {
                    object(c, "user_proxy.code_execution_config");
                    o.codeExecutionConfig(plain(c));
                }
            }
            if (u.has("max_consecutive_auto_reply")) {
                o.maxConsecutiveAutoReply(integer(u, "max_consecutive_auto_reply", "user_proxy"));
            }
            if (u.has("is_termination_msg")) {
                o.isTerminationMsg(new TerminationCheck(text(u, "is_termination_msg", "user_proxy"),
                        TerminationCheck.Match.ENDS_WITH));
            }
            if (u.has("human_input_timeout")) {
                int seconds = integer(u, "human_input_timeout", "user_proxy");
                if (seconds < 1) {
                    throw new AgentConfigException("user_proxy.human_input_timeout must be at least 1 (second), got " + seconds);
                }
                o.humanInputTimeout(Duration.ofSeconds(seconds));
            }
            if (u.has("default_auto_reply")) {
                o.defaultAutoReply(text(u, "default_auto_reply", "user_proxy"));
            }
            if (u.has("system_message")) {
                o.systemMessage(text(u, "system_message", "user_proxy"));
            }
            List<String> patterns = new ArrayList<>();
            if (u.has("forbidden_patterns")) {
                patterns.addAll(strings(u.get("forbidden_patterns"), "user_proxy.forbidden_patterns"));
            }
            if (u.has("policy")) {
                JsonNode p = u.get("policy");
                if (p.isTextual()) {
                    if (!executors.settings().policies().containsKey(p.asText())) {
                        throw new AgentConfigException("user_proxy.policy: unknown policy '" + p.asText() + "'; known: "
                                + String.join(", ", executors.settings().policies().keySet()) + " (or a list of patterns)");
                    }
                    o.policy(p.asText());
                } else {
                    patterns.addAll(strings(p, "user_proxy.policy"));
                }
            }
            if (!patterns.isEmpty()) {
                o.forbiddenPatterns(patterns);
            }
            if (u.has("resource_profile") && u.has("profile")) {
                throw new AgentConfigException("user_proxy: give profile or resource_profile, not both");
            }
            if (u.has("resource_profile")) {
                o.resourceProfile(text(u, "resource_profile", "user_proxy"));
            }
            if (u.has("profile")) {
                o.resourceProfile(text(u, "profile", "user_proxy"));
            }
            if (u.has("retries")) {
                int n = integer(u, "retries", "user_proxy");
                if (n < 1 || n > executors.settings().maxRetries()) {
                    throw new AgentConfigException("user_proxy.retries must be 1 to " + executors.settings().maxRetries()
                            + " (attempts of a failing execution), got " + n);
                }
                o.retries(n);
            }
            if (u.has("cache")) {
                JsonNode c = u.get("cache");
                if (!c.isBoolean()) {
                    throw new AgentConfigException("user_proxy.cache must be true or false");
                }
                o.cacheResults(c.asBoolean());
            }
            return o;
        }, settings, executors);

        OptionalInt maxTurns = OptionalInt.empty();
        if (doc.has("max_turns")) {
            int n = integer(doc, "max_turns", "config");
            if (n < 1) {
                throw new AgentConfigException("config.max_turns must be at least 1, got " + n);
            }
            maxTurns = OptionalInt.of(n);
        }
        if (assistant.name().equals(proxy.name())) {
            throw new AgentConfigException("assistant.name and user_proxy.name must differ (both '" + proxy.name() + "')");
        }
        return new ConversationSpec(proxy, assistant, maxTurns);
    }

    /** A list of non-empty strings (patterns), naming the key at fault. */
    private static List<String> strings(JsonNode node, String where) {
        if (!node.isArray()) {
            throw new AgentConfigException(where + " must be a list of strings");
        }
        List<String> out = new ArrayList<>();
        node.forEach(e -> {
            if (!e.isTextual() || e.asText().isEmpty()) {
                throw new AgentConfigException(where + " must be a list of non-empty strings");
            }
            out.add(e.asText());
        });
        return out;
    }

    private static void object(JsonNode node, String where) {
        if (node == null || !node.isObject()) {
            throw new AgentConfigException(where + " must be an object");
        }
    }

    private static void keys(JsonNode node, Set<String> known, String where) {
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String key = it.next();
            if (!known.contains(key)) {
                throw new AgentConfigException(where + ": unknown key '" + key + "' (known: " + known.stream().sorted().toList() + ")");
            }
        }
    }

    private static String text(JsonNode node, String key, String where) {
        JsonNode v = node.get(key);
        if (v == null || !v.isTextual()) {
            throw new AgentConfigException(where + "." + key + " must be a string");
        }
        return v.asText();
    }

    private static int integer(JsonNode node, String key, String where) {
        JsonNode v = node.get(key);
        if (v == null || !v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new AgentConfigException(where + "." + key + " must be a whole number");
        }
        return v.asInt();
    }

    /** AG2's dict as plain Java values, for {@link CodeExecutionConfig#fromMap}, which checks each key. */
    private static Map<String, Object> plain(JsonNode object) {
        Map<String, Object> map = new LinkedHashMap<>();
        object.fields().forEachRemaining(e -> map.put(e.getKey(), value(e.getValue())));
        return map;
    }

    private static Object value(JsonNode v) {
        if (v.isTextual()) {
            return v.asText();
        }
        if (v.isBoolean()) {
            return v.asBoolean();
        }
        if (v.isIntegralNumber()) {
            return v.canConvertToInt() ? (Object) v.asInt() : (Object) v.asLong();
        }
        if (v.isNumber()) {
            return v.asDouble();
        }
        if (v.isArray()) {
            List<Object> list = new ArrayList<>();
            v.forEach(e -> list.add(value(e)));
            return list;
        }
        if (v.isObject()) {
            return plain(v);
        }
        throw new AgentConfigException("code_execution_config: null is not a value");
    }
}
