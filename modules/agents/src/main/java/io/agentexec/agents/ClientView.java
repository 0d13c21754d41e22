package io.agentexec.agents;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import io.agentexec.agents.entity.ConversationEntity;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * A chat's journal events as a remote client may read them: what it sent and the models' names, never
 * the operator's set-up. The journal keeps each agent's whole {@link LlmConfig} (endpoint URL, the
 * name of the variable holding the key, a replay script's host path), and a model's failure message
 * may quote them; here {@code llmConfig} becomes {@code {"model": NAME, "temperature"}} with the name
 * the client chose from the {@link ModelCatalog}, a replayed message's model {@code replay:NAME}, and
 * every remaining mention of an endpoint, key variable or script path (in failure reasons, say) is
 * replaced by words naming the model. Only the view changes: the journal and the chat keep everything.
 */
final class ClientView {
    /** One operator's string and what a client reads instead. */
    private record Secret(String value, String shownAs) { }

    private final ModelCatalog models;
    private final ObjectMapper json;
    private final List<Secret> secrets;

    ClientView(ModelCatalog models, ObjectMapper json) {
        this.models = models;
        this.json = json;
        List<Secret> found = new ArrayList<>();
        for (String name : models.names()) {
            LlmConfig c = models.find(name);
            if (!c.baseUrl().isBlank()) {
                found.add(new Secret(c.baseUrl(), "(the endpoint of model '" + name + "')"));
            }
            c.apiKeyEnv().filter(v -> !v.isBlank())
                    .ifPresent(v -> found.add(new Secret(v, "(the key variable of model '" + name + "')")));
            c.replayScript().filter(v -> !v.isBlank())
                    .ifPresent(v -> found.add(new Secret(v, "(the replay script of model '" + name + "')")));
        }
        // the longest first: a URL that another one begins with is replaced whole
        found.sort(Comparator.comparingInt((Secret s) -> s.value().length()).reversed());
        this.secrets = List.copyOf(found);
    }

    /** The event's JSON for a client. */
    JsonNode of(Object event) {
        JsonNode tree = json.valueToTree(event);
        if (event instanceof ConversationEntity.ChatStarted started && tree instanceof ObjectNode o) {
            o.set("initiator", agent(started.initiator()));
            o.set("recipient", agent(started.recipient()));
        }
        if (event instanceof ConversationEntity.MessageSent sent && tree.path("message") instanceof ObjectNode m) {
            sent.message().model().ifPresent(label -> m.put("model", modelName(label)));
        }
        return scrub(tree);
    }

    private JsonNode agent(AgentDefinition agent) {
        ObjectNode node = json.valueToTree(agent);
        if (agent.llmConfig().isEmpty()) {
            node.putNull("llmConfig");
            return node;
        }
        LlmConfig llm = agent.llmConfig().get();
        ObjectNode view = json.createObjectNode();
        view.put("model", catalogName(llm).orElse(llm.kind() == LlmConfig.Kind.REPLAY ? "replay" : llm.model()));
        view.put("temperature", llm.temperature());
        node.set("llmConfig", view);
        return node;
    }

    /** The catalog's name for this model (a chat may have changed its temperature only). */
    private Optional<String> catalogName(LlmConfig llm) {
        for (String name : models.names()) {
            LlmConfig c = models.find(name);
            if (c.kind() == llm.kind() && c.baseUrl().equals(llm.baseUrl()) && c.model().equals(llm.model())
                    && c.apiKeyEnv().equals(llm.apiKeyEnv()) && c.replayScript().equals(llm.replayScript())) {
                return Optional.of(name);
            }
        }
        return Optional.empty();
    }

    /** A message's model label ({@link LlmConfig#label()}): a replay is {@code replay:NAME}, not its file. */
    private String modelName(String label) {
        for (String name : models.names()) {
            LlmConfig c = models.find(name);
            if (c.label().equals(label)) {
                return c.kind() == LlmConfig.Kind.REPLAY ? "replay:" + name : label;
            }
        }
        return label.startsWith("replay:") ? "replay" : label;
    }

    private JsonNode scrub(JsonNode node) {
        if (node.isTextual()) {
            String text = node.asText();
            String shown = text;
            for (Secret s : secrets) {
                shown = shown.replace(s.value(), s.shownAs());
            }
            return Objects.equals(shown, text) ? node : TextNode.valueOf(shown);
        }
        if (node instanceof ObjectNode o) {
            for (Map.Entry<String, JsonNode> field : o.properties()) {
                field.setValue(scrub(field.getValue()));
            }
        } else if (node instanceof ArrayNode a) {
            for (int i = 0; i < a.size(); i++) {
                a.set(i, scrub(a.get(i)));
            }
        }
        return node;
    }
}
