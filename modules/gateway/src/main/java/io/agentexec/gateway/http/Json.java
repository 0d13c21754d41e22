package io.agentexec.gateway.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Module;
import io.agentexec.cluster.api.ExecutionReply;
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

    /** An outcome that carries no result (or a cancelled run), as the error it is. */
    public static ApiException asError(ExecutionReply outcome, java.time.Duration retryAfter) {
        // Java 17 has no pattern switch; the sealed interface keeps this list complete by review.
        if (outcome.cancelled()) {
            return new ApiException(409, "cancelled", ((ExecutionReply.Completed) outcome).result().message());
        }
        if (outcome instanceof ExecutionReply.Overloaded o) {
            return ApiException.unavailable("overloaded", "the cluster is overloaded: " + o.reason(), retryAfter);
        }
        if (outcome instanceof ExecutionReply.NotFound n) {
            return ApiException.notFound(n.reason());
        }
        if (outcome instanceof ExecutionReply.Rejected r) {
            return ApiException.badRequest(r.reason());
        }
        if (outcome instanceof ExecutionReply.SandboxLost l) {
            return ApiException.unavailable("unavailable", "the worker running the code was lost (" + l.reason()
                    + "); the code may have run", retryAfter);
        }
        throw new IllegalArgumentException("a completed outcome is no error");
    }

    /** The name an outcome without a result is counted under in metrics and logs. */
    public static String refusal(ExecutionReply outcome) {
        if (outcome.cancelled()) {
            return "cancelled";
        }
        return switch (outcome.status()) {
            case OVERLOADED -> "overloaded";
            case NOT_FOUND -> "notfound";
            case REJECTED -> "rejected";
            case SANDBOX_LOST -> "unavailable";
            case COMPLETED -> "completed";
        };
    }

    /** Whether an outcome is answered with a result (a completed run, not a cancelled one). */
    public static boolean hasResult(ExecutionReply outcome) {
        return outcome instanceof ExecutionReply.Completed && !outcome.cancelled();
    }

    public static byte[] bytes(Object value) {
        try {
            return MAPPER.writeValueAsBytes(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write JSON", e);
        }
    }
}
