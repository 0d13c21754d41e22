package io.agentexec.gateway.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Module;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.port.SandboxInfo;
import io.agentexec.gateway.executions.ExecutionEvent;
import io.agentexec.gateway.service.ApiException;
import io.agentexec.gateway.service.Executions;
import io.agentexec.gateway.service.Outcomes;
import io.agentexec.gateway.spi.ConversationService;
import io.agentexec.sandbox.model.ExecutionResult;
import java.util.Optional;

/** The HTTP API's JSON: one mapper, and the shapes of the documents it answers (results, errors, executions, sandboxes, conversations). */
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

    /** A completed run's result document (with a note when its sandbox's earlier workspace was lost). */
    public static ObjectNode completed(ExecutionOutcome.Completed completed, String executionId) {
        ObjectNode body = result(completed.result(), executionId);
        completed.note().ifPresent(note -> body.put("note", note));
        return body;
    }

    /** A run's outcome as its result document, or as the error document of one without a result. */
    public static ObjectNode outcome(ExecutionOutcome outcome, String executionId) {
        if (Outcomes.hasResult(outcome)) {
            return completed((ExecutionOutcome.Completed) outcome, executionId);
        }
        ApiException e = Outcomes.asError(outcome);
        return error(e.code(), e.getMessage(), executionId);
    }

    /** An execution found by id: running, completed with its result, or cancelled / failed with its error. */
    public static ObjectNode execution(Executions.Found found, String requestId) {
        ObjectNode body = MAPPER.createObjectNode();
        body.put("id", found.id());
        found.startedAt().ifPresent(t -> body.put("startedAt", t.toString()));
        Optional<ExecutionOutcome> outcome = found.outcome();
        if (outcome.isEmpty()) {
            body.put("status", "running");
        } else if (Outcomes.hasResult(outcome.get())) {
            body.put("status", "completed");
            body.set("result", completed((ExecutionOutcome.Completed) outcome.get(), found.id()));
        } else {
            ApiException e = Outcomes.asError(outcome.get());
            body.put("status", outcome.get().cancelled() ? "cancelled" : "failed");
            body.set("error", error(e.code(), e.getMessage(), requestId).get("error"));
        }
        return body;
    }

    /** A chunk of a running execution's output (an SSE {@code output} event). */
    public static ObjectNode output(ExecutionEvent.Output out) {
        ObjectNode data = MAPPER.createObjectNode();
        data.put("stream", out.stream());
        data.put("text", out.text());
        return data;
    }

    public static ObjectNode sandbox(SandboxInfo info) {
        ObjectNode body = MAPPER.createObjectNode();
        body.put("id", info.sandboxId());
        body.put("language", info.language());
        body.put("status", info.status());
        return body;
    }

    public static ObjectNode conversationEvent(ConversationService.ConversationEvent e) {
        ObjectNode node = MAPPER.createObjectNode();
        node.put("sequence", e.sequence());
        node.put("type", e.type());
        node.set("body", e.body());
        return node;
    }

    public static ObjectNode transcript(ConversationService.Transcript t) {
        ObjectNode node = MAPPER.createObjectNode();
        node.put("id", t.conversationId());
        node.put("status", t.status());
        var events = node.putArray("events");
        t.events().forEach(e -> events.add(conversationEvent(e)));
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
