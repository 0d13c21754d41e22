package io.agentexec.gateway.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Module;
import io.agentexec.sandbox.model.ExecutionResult;

/** The gateway's JSON: one mapper, and the shapes of results and errors. */
public final class Json {
    public static final ObjectMapper MAPPER = new ObjectMapper().registerModule(new Jdk8Module())
            .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private Json() {
    }

    /** The engine's result as the API returns it (Judge0 / Piston style), with the execution's id. */
    public static ObjectNode result(ExecutionResult result, String executionId) {
        ObjectNode node = MAPPER.createObjectNode();
        node.put("id", executionId);
        node.setAll((ObjectNode) MAPPER.valueToTree(result));
        return node;
    }

    public static ObjectNode error(String code, String message, String requestId) {
        ObjectNode node = MAPPER.createObjectNode();
        ObjectNode error = node.putObject("error");
        error.put("code", code);
        error.put("message", message);
        error.put("requestId", requestId);
        return node;
    }

    public static byte[] bytes(Object value) {
        try {
            return MAPPER.writeValueAsBytes(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write JSON", e);
        }
    }
}
