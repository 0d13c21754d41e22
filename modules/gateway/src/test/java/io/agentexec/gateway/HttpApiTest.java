package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.agentexec.gateway.TestNode.Reply;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The HTTP API over a real engine and Docker, through real HTTP on 127.0.0.1. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class HttpApiTest {
    private TestNode node;

    @BeforeAll
    void start() throws Exception {
        node = TestNode.start("engine", Map.of());
    }

    @AfterAll
    void stop() {
        if (node != null) {
            node.close();
        }
    }

    @Test
    void runsCodeAndReturnsTheEnginesResult() {
        Reply r = node.post("/v1/executions", TestNode.ALICE,
                "{\"language\":\"python\",\"code\":\"import sys\\nprint('hi')\\nprint('err', file=sys.stderr)\",\"limits\":{\"timeoutSeconds\":10}}");
        assertEquals(200, r.status(), r.body());
        JsonNode j = r.json();
        assertEquals("OK", j.get("verdict").asText());
        assertEquals(0, j.get("exitCode").asInt());
        assertEquals("hi\n", j.get("stdout").asText());
        assertEquals("err\n", j.get("stderr").asText());
        assertTrue(j.get("output").asText().contains("hi"));
        assertFalse(j.get("stdoutTruncated").asBoolean());
        assertTrue(j.has("wallTimeMs"));
        assertTrue(j.get("id").asText().startsWith("exe-"));
        assertTrue(j.get("ag2Reply").asText().startsWith("exitcode: 0 (execution succeeded)"));
        assertNotNull(r.header("X-Request-Id"));
    }

    @Test
    void userCodeFailuresAreResultsNotErrors() {
        Reply r = node.post("/v1/executions", TestNode.ALICE,
                "{\"language\":\"bash\",\"code\":\"echo out; exit 3\",\"stdin\":\"\"}");
        assertEquals(200, r.status(), r.body());
        assertEquals("RUNTIME_ERROR", r.json().get("verdict").asText());
        assertEquals(3, r.json().get("exitCode").asInt());

        Reply timeout = node.post("/v1/executions", TestNode.ALICE,
                "{\"language\":\"python\",\"code\":\"import time\\ntime.sleep(30)\",\"limits\":{\"timeoutSeconds\":1}}");
        assertEquals(200, timeout.status(), timeout.body());
        assertEquals("TIMEOUT", timeout.json().get("verdict").asText());
    }

    @Test
    void stdinFilesAndBlocksReachTheCode() {
        Reply r = node.post("/v1/executions", TestNode.ALICE, """
                {"blocks": [{"language": "python", "code": "import sys\\nprint(sys.stdin.read().upper())"},
                            {"language": "sh", "code": "cat data/in.txt"}],
                 "stdin": "abc", "files": [{"path": "data/in.txt", "content": "ZnJvbSBmaWxl", "encoding": "base64"}]}
                """);
        assertEquals(200, r.status(), r.body());
        assertEquals("ABC\nfrom file", r.json().get("stdout").asText());
    }

    @Test
    void limitsAboveTheTenantsMaximumAreClamped() {
        Reply r = node.post("/v1/executions", TestNode.ALICE,
                "{\"language\":\"python\",\"code\":\"print(1)\",\"limits\":{\"timeoutSeconds\":1e300,\"memoryMb\":1e12,\"pids\":100000000,\"outputBytes\":1e15,\"cpus\":64}}");
        assertEquals(200, r.status(), r.body());
        assertEquals("OK", r.json().get("verdict").asText());
    }

    static Stream<Arguments> badExecutions() {
        return Stream.of(
                Arguments.of("{\"language\":\"python\",\"code\":", 400, "invalid_request", "malformed JSON"),
                Arguments.of("[1,2]", 400, "invalid_request", "JSON object"),
                Arguments.of("", 400, "invalid_request", "empty"),
                Arguments.of("{\"language\":\"python\",\"code\":\"1\"} {}", 400, "invalid_request", "malformed JSON"),
                Arguments.of("{\"code\":\"print(1)\"}", 400, "invalid_request", "'language' is required"),
                Arguments.of("{\"language\":\"python\"}", 400, "invalid_request", "'code' is required"),
                Arguments.of("{\"language\":\"cobol\",\"code\":\"x\"}", 400, "invalid_request", "unknown language 'cobol'"),
                Arguments.of("{\"language\":\"/bin/sh\",\"code\":\"x\"}", 400, "invalid_request", "language name"),
                Arguments.of("{\"language\":\"../python\",\"code\":\"x\"}", 400, "invalid_request", "language name"),
                Arguments.of("{\"language\":\"python; rm -rf /\",\"code\":\"x\"}", 400, "invalid_request", "language name"),
                Arguments.of("{\"language\":\"bash -c id\",\"code\":\"x\"}", 400, "invalid_request", "language name"),
                Arguments.of("{\"language\":42,\"code\":\"x\"}", 400, "invalid_request", "must be a string"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"limits\":{\"timeoutSeconds\":-1}}", 400, "invalid_request", "timeoutSeconds must be positive"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"limits\":{\"timeoutSeconds\":0}}", 400, "invalid_request", "timeoutSeconds must be positive"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"limits\":{\"memoryMb\":\"512\"}}", 400, "invalid_request", "memoryMb must be a number"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"limits\":{\"cpus\":NaN}}", 400, "invalid_request", "malformed JSON"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"limits\":{\"cpus\":1e999}}", 400, "invalid_request", "finite"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"limits\":{\"pids\":1.5}}", 400, "invalid_request", "whole number"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"limits\":{\"memoryMb\":2}}", 400, "invalid_request", "memory"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"limits\":{\"outputBytes\":null,\"bogus\":1}}", 400, "invalid_request", "unknown field 'limits.bogus'"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"limits\":\"big\"}", 400, "invalid_request", "'limits' must be a JSON object"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"colour\":\"red\"}", 400, "invalid_request", "unknown field 'colour'"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"image\":\"ubuntu:latest\"}", 400, "invalid_request", "not allowed"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"profile\":\"gpu\"}", 400, "invalid_request", "unknown profile"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"files\":[{\"path\":\"../etc/passwd\",\"content\":\"x\"}]}", 400, "invalid_request", "inside the workspace"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"files\":[{\"path\":\"/etc/passwd\",\"content\":\"x\"}]}", 400, "invalid_request", "relative"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"files\":[{\"path\":\"a\",\"content\":\"%%%\",\"encoding\":\"base64\"}]}", 400, "invalid_request", "base64"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"sandboxId\":\"sbx-nope\"}", 404, "not_found", "no sandbox"),
                Arguments.of("{\"language\":\"python\",\"code\":\"x\",\"sandboxId\":\"../x\"}", 400, "invalid_request", "sandbox id"));
    }

    @ParameterizedTest
    @MethodSource("badExecutions")
    void badInputGetsAJsonErrorNamingTheProblem(String body, int status, String code, String messagePart) {
        Reply r = node.post("/v1/executions", TestNode.BOB, body);
        assertEquals(status, r.status(), r.body());
        assertEquals(code, r.errorCode(), r.body());
        assertTrue(r.json().path("error").path("message").asText().contains(messagePart), r.body());
        assertFalse(r.body().contains("at io.agentexec"), "no stack trace: " + r.body());
    }

    @Test
    void protocolErrorsAreJsonToo() {
        Reply wrongType = node.send("POST", "/v1/executions", TestNode.BOB, "text/plain", "print(1)".getBytes(StandardCharsets.UTF_8));
        assertEquals(415, wrongType.status());
        assertEquals("unsupported_media_type", wrongType.errorCode());

        Reply wrongMethod = node.send("PATCH", "/v1/executions", TestNode.BOB, null, null);
        assertEquals(405, wrongMethod.status());
        assertEquals("POST", wrongMethod.header("Allow"));
        assertEquals("method_not_allowed", wrongMethod.errorCode());

        Reply unknown = node.get("/v2/nothing", TestNode.BOB);
        assertEquals(404, unknown.status());
        assertEquals("not_found", unknown.errorCode());

        byte[] big = ("{\"language\":\"python\",\"code\":\"" + "x".repeat(100_000) + "\"}").getBytes(StandardCharsets.UTF_8);
        Reply tooBig = node.send("POST", "/v1/executions", TestNode.BOB, "application/json", big);
        assertEquals(413, tooBig.status());
        assertEquals("body_too_large", tooBig.errorCode());
    }

    @Test
    void aChunkedBodyOverTheLimitIsRefusedWhileStreaming() throws Exception {
        // no Content-Length: the gateway counts while reading and stops at the limit (64k here)
        try (Socket socket = new Socket("127.0.0.1", node.gateway.httpPort())) {
            OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TestNode.BOB
                    + "\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            byte[] chunk = " ".repeat(16 * 1024).getBytes(StandardCharsets.US_ASCII);
            try {
                for (int i = 0; i < 8; i++) {
                    out.write((Integer.toHexString(chunk.length) + "\r\n").getBytes(StandardCharsets.US_ASCII));
                    out.write(chunk);
                    out.write("\r\n".getBytes(StandardCharsets.US_ASCII));
                }
                out.flush();
            } catch (java.io.IOException closedByServer) {
                // the server answered and closed before taking it all: that is the point
            }
            String response = new String(socket.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            assertTrue(response.startsWith("HTTP/1.1 413"), response);
            assertTrue(response.contains("body_too_large"), response);
        }
    }

    @Test
    void authenticationIsRequired() {
        Reply none = node.post("/v1/executions", null, "{\"language\":\"python\",\"code\":\"print(1)\"}");
        assertEquals(401, none.status());
        assertEquals("unauthenticated", none.errorCode());
        assertNotNull(none.header("WWW-Authenticate"));
        Reply wrong = node.post("/v1/executions", "not-a-key", "{\"language\":\"python\",\"code\":\"print(1)\"}");
        assertEquals(401, wrong.status());
        Reply basic = node.send("GET", "/v1/languages", null, null, null);
        assertEquals(401, basic.status());
    }

    @Test
    void asyncExecutionsCanBeReadAndFollowedAsServerSentEvents() throws Exception {
        Reply accepted = node.post("/v1/executions?async=true", TestNode.ALICE,
                "{\"language\":\"python\",\"code\":\"import time\\nfor i in range(3):\\n    print('line', i, flush=True)\\n    time.sleep(0.4)\"}");
        assertEquals(202, accepted.status(), accepted.body());
        String id = accepted.json().get("id").asText();
        assertEquals("/v1/executions/" + id, accepted.header("Location"));

        HttpRequest events = HttpRequest.newBuilder(URI.create(node.base + "/v1/executions/" + id + "/events"))
                .header("Authorization", "Bearer " + TestNode.ALICE).build();
        HttpResponse<Stream<String>> stream = node.http.send(events, HttpResponse.BodyHandlers.ofLines());
        assertEquals(200, stream.statusCode());
        assertTrue(stream.headers().firstValue("Content-Type").orElse("").startsWith("text/event-stream"));
        List<String> lines = stream.body().toList();
        List<String> types = lines.stream().filter(l -> l.startsWith("event: ")).map(l -> l.substring(7)).toList();
        assertTrue(types.contains("output"), lines.toString());
        assertEquals("result", types.get(types.size() - 1), lines.toString());
        StringBuilder outputs = new StringBuilder();
        for (String l : lines) {
            if (l.startsWith("data: {\"stream\"")) {
                outputs.append(TestNode.JSON.readTree(l.substring(6)).get("text").asText());
            }
        }
        assertEquals("line 0\nline 1\nline 2\n", outputs.toString());

        Reply read = node.get("/v1/executions/" + id, TestNode.ALICE);
        assertEquals(200, read.status());
        assertEquals("completed", read.json().get("status").asText());
        assertEquals("OK", read.json().path("result").path("verdict").asText());
    }

    @Test
    void aTenantNeverSeesAnotherTenantsExecutionsOrSandboxes() {
        Reply mine = node.post("/v1/executions?async=true", TestNode.ALICE, "{\"language\":\"python\",\"code\":\"print(1)\"}");
        String id = mine.json().get("id").asText();
        assertEquals(404, node.get("/v1/executions/" + id, TestNode.BOB).status());
        assertEquals(404, node.get("/v1/executions/" + id + "/events", TestNode.BOB).status());
        assertEquals(404, node.delete("/v1/executions/" + id, TestNode.BOB).status());

        Reply sandbox = node.post("/v1/sandboxes", TestNode.ALICE, "{\"language\":\"python\"}");
        assertEquals(201, sandbox.status(), sandbox.body());
        String sid = sandbox.json().get("id").asText();
        try {
            assertEquals(404, node.get("/v1/sandboxes/" + sid, TestNode.BOB).status());
            assertEquals(404, node.post("/v1/sandboxes/" + sid + "/executions", TestNode.BOB,
                    "{\"language\":\"python\",\"code\":\"print(1)\"}").status());
            assertEquals(404, node.get("/v1/sandboxes/" + sid + "/files/a.txt", TestNode.BOB).status());
            assertEquals(404, node.send("PUT", "/v1/sandboxes/" + sid + "/files/a.txt", TestNode.BOB,
                    "application/octet-stream", new byte[]{1}).status());
            assertEquals(404, node.delete("/v1/sandboxes/" + sid, TestNode.BOB).status());
            assertEquals(200, node.get("/v1/sandboxes/" + sid, TestNode.ALICE).status());
        } finally {
            node.delete("/v1/sandboxes/" + sid, TestNode.ALICE);
        }
    }

    @Test
    void sandboxesKeepTheirWorkspaceAndMoveFilesInAndOut() {
        Reply created = node.post("/v1/sandboxes", TestNode.ALICE, "{\"language\":\"python\",\"limits\":{\"timeoutSeconds\":10}}");
        assertEquals(201, created.status(), created.body());
        String sid = created.json().get("id").asText();
        String files = "/v1/sandboxes/" + sid + "/files/";
        Reply put = node.send("PUT", files + "in/data.txt", TestNode.ALICE, "application/octet-stream",
                "41 1".getBytes(StandardCharsets.UTF_8));
        assertEquals(200, put.status(), put.body());
        assertEquals(4, put.json().get("sizeBytes").asInt());

        Reply run = node.post("/v1/sandboxes/" + sid + "/executions", TestNode.ALICE,
                "{\"language\":\"python\",\"code\":\"a,b=open('in/data.txt').read().split()\\nopen('out.txt','w').write(str(int(a)+int(b)))\"}");
        assertEquals(200, run.status(), run.body());
        assertEquals("OK", run.json().get("verdict").asText(), run.body());

        Reply again = node.post("/v1/sandboxes/" + sid + "/executions", TestNode.ALICE,
                "{\"language\":\"bash\",\"code\":\"cat out.txt\"}");
        assertEquals("42", again.json().get("stdout").asText(), again.body());

        Reply got = node.get(files + "out.txt", TestNode.ALICE);
        assertEquals(200, got.status());
        assertEquals("42", got.body());

        for (String bad : List.of("..%2F..%2Fetc%2Fpasswd", "a%2F..%2F..%2Fx", "%2Fetc%2Fpasswd", "a%00b")) {
            Reply r = node.get(files + bad, TestNode.ALICE);
            assertEquals(400, r.status(), bad + " -> " + r.body());
            assertEquals("invalid_request", r.errorCode());
        }

        assertEquals(200, node.delete("/v1/sandboxes/" + sid, TestNode.ALICE).status());
        assertEquals(404, node.get("/v1/sandboxes/" + sid, TestNode.ALICE).status());
        assertEquals(404, node.post("/v1/sandboxes/" + sid + "/executions", TestNode.ALICE,
                "{\"language\":\"bash\",\"code\":\"true\"}").status());
    }

    @Test
    void liveSandboxQuotaGives429WithRetryAfter() {
        Reply first = node.post("/v1/sandboxes", TestNode.CAROL, "{\"language\":\"bash\"}");
        assertEquals(201, first.status(), first.body());
        try {
            Reply second = node.post("/v1/sandboxes", TestNode.CAROL, "{\"language\":\"bash\"}");
            assertEquals(429, second.status(), second.body());
            assertEquals("sandbox_quota", second.errorCode());
            assertNotNull(second.header("Retry-After"));
        } finally {
            node.delete("/v1/sandboxes/" + first.json().get("id").asText(), TestNode.CAROL);
        }
        Reply afterDelete = node.post("/v1/sandboxes", TestNode.CAROL, "{\"language\":\"bash\"}");
        assertEquals(201, afterDelete.status(), afterDelete.body());
        node.delete("/v1/sandboxes/" + afterDelete.json().get("id").asText(), TestNode.CAROL);
    }

    @Test
    void requestRateOverTheTenantsLimitGives429WithRetryAfter() {
        Reply last = null;
        for (int i = 0; i < 3; i++) {
            last = node.get("/v1/languages", TestNode.DAVE);
        }
        assertEquals(429, last.status(), last.body());
        assertEquals("rate_limited", last.errorCode());
        assertTrue(Integer.parseInt(last.header("Retry-After")) >= 1);
        assertEquals(200, node.get("/v1/languages", TestNode.ALICE).status(), "other tenants are not limited");
    }

    @Test
    void aClientThatDisconnectsCancelsItsRunAndFreesTheContainer() throws Exception {
        String body = "{\"language\":\"python\",\"code\":\"import time\\ntime.sleep(60)\",\"limits\":{\"timeoutSeconds\":60}}";
        try (Socket socket = new Socket("127.0.0.1", node.gateway.httpPort())) {
            OutputStream out = socket.getOutputStream();
            out.write(("POST /v1/executions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TestNode.ALICE
                    + "\r\nContent-Type: application/json\r\nContent-Length: " + body.length() + "\r\n\r\n" + body)
                    .getBytes(StandardCharsets.UTF_8));
            out.flush();
            // read the status line: the run was admitted and is running
            InputStream in = socket.getInputStream();
            byte[] head = new byte[12];
            assertEquals(12, in.readNBytes(head, 0, 12));
            assertEquals("HTTP/1.1 200", new String(head, StandardCharsets.US_ASCII));
        }
        Instant deadline = Instant.now().plus(Duration.ofSeconds(30));
        String metrics = "";
        while (Instant.now().isBefore(deadline)) {
            metrics = node.metrics().body();
            if (metrics.contains("agentexec_executions_refused_total{reason=\"cancelled\"} 1")) {
                break;
            }
            Thread.sleep(200);
        }
        assertTrue(metrics.contains("agentexec_executions_refused_total{reason=\"cancelled\"} 1"), metrics);
    }

    @Test
    void healthReadinessLanguagesAndMetrics() {
        assertEquals(200, node.get("/healthz", null).status());
        Reply ready = node.get("/readyz", null);
        assertEquals(200, ready.status());
        assertEquals("ready", ready.json().get("status").asText());
        // The test run pins zygotes on (the parent pom); a node with zygote.enabled = auto: AssembledNodeTest.
        assertTrue(ready.json().get("detail").asText().contains(
                "blocks start as zygotes (agentexec.sandbox.zygote.enabled = true)"), ready.body());

        Reply languages = node.get("/v1/languages", TestNode.ALICE);
        assertEquals(200, languages.status());
        assertTrue(languages.body().contains("\"python\"") && languages.body().contains("\"javascript\""));

        node.post("/v1/executions", TestNode.ALICE, "{\"language\":\"python\",\"code\":\"print(1)\"}");
        Reply metrics = node.metrics();
        assertEquals(200, metrics.status());
        assertTrue(metrics.header("Content-Type").startsWith("text/plain"));
        for (String name : List.of("agentexec_http_request_duration_seconds_bucket{protocol=\"http\",method=\"POST\",route=\"/v1/executions\"",
                "agentexec_execution_duration_seconds_bucket{verdict=\"OK\"", "agentexec_executions_total{verdict=\"OK\"}",
                "agentexec_worker_queued{node=\"", "agentexec_worker_slots{node=\"", "agentexec_warm_pool_size{image=\"agentexec/python:bookworm\"}",
                "agentexec_live_sandboxes ")) {
            assertTrue(metrics.body().contains(name), name + " missing in\n" + metrics.body());
        }
    }

    /** Metrics name workers and images: operators read them on their own listener (or with their token), tenants never. */
    @Test
    void metricsAreNotServedToTenantsOnTheApiPort() {
        for (String key : java.util.Arrays.asList(null, TestNode.ALICE)) {
            Reply refused = node.get("/metrics", key);
            assertEquals(401, refused.status(), refused.body());
            assertEquals("unauthenticated", refused.errorCode());
            assertFalse(refused.body().contains("agentexec_worker_queued"), refused.body());
        }
        // the operator's own listener, on loopback without a token by default
        Reply own = node.metrics();
        assertEquals(200, own.status(), own.body());
        assertTrue(own.body().contains("agentexec_worker_queued{node=\""), own.body());
        assertEquals(404, node.metricsPath("/v1/languages", null).status());
    }

    /** With a metrics token the listener requires it, and it alone opens /metrics on the API port. */
    @Test
    void aMetricsTokenGuardsBothWays() throws Exception {
        String token = "metrics-token-0123456789";
        try (TestNode withToken = TestNode.start("engine", Map.of("agentexec.gateway.metrics.token", token,
                "agentexec.sandbox.docker.warm-pool.size", 0))) {
            assertEquals(401, withToken.metrics().status());
            assertEquals(401, withToken.metrics("not-the-token-0123456789").status());
            assertEquals(200, withToken.metrics(token).status());
            assertEquals(401, withToken.get("/metrics", TestNode.ALICE).status());
            Reply api = withToken.send("GET", "/metrics", null, null, null, Map.of("Authorization", "Bearer " + token));
            assertEquals(200, api.status(), api.body());
            assertTrue(api.body().contains("agentexec_ready 1"), api.body());
        }
        // and a listener other machines reach must have one
        IllegalStateException open = org.junit.jupiter.api.Assertions.assertThrows(IllegalStateException.class, () ->
                TestNode.start("engine", Map.of("agentexec.gateway.metrics.host", "0.0.0.0")).close());
        assertTrue(open.getMessage().contains("agentexec.gateway.metrics.token"), open.getMessage());
    }

    @Test
    void conversationsSayClearlyThatThisNodeCannotRunThem() {
        Reply r = node.post("/v1/conversations", TestNode.ALICE, "{\"config\":{},\"message\":\"hi\"}");
        assertEquals(501, r.status(), r.body());
        assertEquals("not_implemented", r.errorCode());
        assertTrue(r.json().path("error").path("message").asText().contains("agents"));
    }
}
