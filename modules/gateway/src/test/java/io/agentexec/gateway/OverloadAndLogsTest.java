package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A node whose only worker has one slot and no queue: the second execution is refused at once with
 * 503 and Retry-After while the first still completes; and the request's log lines are JSON objects
 * that carry the request, tenant and execution ids.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OverloadAndLogsTest {
    private TestNode node;

    @BeforeAll
    void start() throws Exception {
        node = TestNode.start("cluster", Map.of(
                "agentexec.cluster.persistence.url",
                "jdbc:h2:mem:overload-" + UUID.randomUUID() + ";DB_CLOSE_DELAY=-1;DATABASE_TO_UPPER=false",
                "pekko.remote.artery.canonical.port", 0,
                "agentexec.cluster.worker.slots", 1,
                "agentexec.cluster.worker.queue", 0));
        for (int i = 0; i < 200 && node.get("/readyz", null).status() != 200; i++) {
            Thread.sleep(100);
        }
    }

    @AfterAll
    void stop() {
        if (node != null) {
            node.close();
        }
    }

    private static boolean running(TestNode node) {
        return node.metrics().body().lines()
                .anyMatch(l -> l.startsWith("agentexec_worker_running{") && l.endsWith(" 1"));
    }

    @Test
    void overloadIsRefusedAtOnceWhileAcceptedWorkCompletes() throws Exception {
        CompletableFuture<TestNode.Reply> first = CompletableFuture.supplyAsync(() -> node.post("/v1/executions", TestNode.ALICE,
                "{\"language\":\"python\",\"code\":\"import time\\ntime.sleep(4)\\nprint('first done')\"}"));
        for (int i = 0; i < 300 && !running(node); i++) {
            Thread.sleep(50);
        }
        assertTrue(running(node), "the first execution holds the only slot");
        TestNode.Reply refused = node.post("/v1/executions", TestNode.BOB, "{\"language\":\"python\",\"code\":\"print(2)\"}");
        assertEquals(503, refused.status(), refused.body());
        assertEquals("overloaded", refused.errorCode());
        assertTrue(refused.header("Retry-After") != null && Integer.parseInt(refused.header("Retry-After")) >= 1,
                () -> "Retry-After: " + refused.headers());
        assertFalse(first.isDone(), "refused while the first still runs: the refusal did not wait for a slot");
        TestNode.Reply accepted = first.get();
        assertEquals(200, accepted.status(), accepted.body());
        assertEquals("OK", accepted.json().get("verdict").asText());
        assertEquals("first done\n", accepted.json().get("stdout").asText());
        assertTrue(node.metrics().body().contains("agentexec_executions_refused_total"));
    }

    @Test
    void requestLogLinesAreJsonWithRequestTenantAndExecutionIds() throws Exception {
        List<JsonNode> lines;
        try (LogCapture logs = new LogCapture()) {
            TestNode.Reply r = node.post("/v1/executions", TestNode.ALICE, "{\"language\":\"python\",\"code\":\"print(1)\"}");
            assertEquals(200, r.status(), r.body());
            lines = logs.lines(); // every line parses as one JSON object
        }
        JsonNode accepted = lines.stream().filter(l -> l.path("message").asText().startsWith("execution accepted")).findFirst()
                .orElseThrow(() -> new AssertionError("no 'execution accepted' line in " + lines));
        assertEquals("alice", accepted.path("tenant").asText(), accepted::toString);
        assertFalse(accepted.path("requestId").asText().isEmpty(), accepted::toString);
        assertFalse(accepted.path("executionId").asText().isEmpty(), accepted::toString);
        assertEquals("INFO", accepted.path("level").asText());
    }
}
