package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.ConfigFactory;
import io.agentexec.gateway.grpc.v1.ExecuteRequest;
import io.agentexec.gateway.grpc.v1.ExecutionEvent;
import io.agentexec.gateway.grpc.v1.ExecutionServiceClient;
import io.agentexec.gateway.grpc.v1.FileRequest;
import io.agentexec.gateway.grpc.v1.Limits;
import io.agentexec.gateway.grpc.v1.SandboxServiceClient;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.BufferedReader;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.apache.pekko.stream.javadsl.Sink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import io.agentexec.testkit.Await;

/**
 * The default backend: a single-node agentexec cluster (H2 in memory, real Docker), reached through
 * the gateway over real HTTP and gRPC on 127.0.0.1: live output, cancellation that frees the
 * container, files both ways, images.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ClusterBackendTest {
    /** Small, so that a file past it is easy to make (PUT bodies may be 64 KiB). */
    private static final int MAX_FILE_READ = 1024;
    private TestNode node;
    private final DockerProbe docker = new DockerProbe();
    private ActorSystem<Void> clientSystem;
    private ExecutionServiceClient grpcExecutions;
    private SandboxServiceClient grpcSandboxes;

    @BeforeAll
    void start() throws Exception {
        node = TestNode.start("cluster", Map.of(
                "agentexec.cluster.persistence.url", "jdbc:h2:mem:gateway-cluster-test;DB_CLOSE_DELAY=-1;DATABASE_TO_UPPER=false",
                "pekko.remote.artery.canonical.port", 0,
                "agentexec.gateway.http.max-file-read-bytes", MAX_FILE_READ));
        // the single node must join itself and see its worker before it takes work
        for (int i = 0; i < 200 && node.get("/readyz", null).status() != 200; i++) {
            Thread.sleep(100);
        }
        clientSystem = ActorSystem.create(Behaviors.empty(), "cluster-backend-grpc-client",
                ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
        GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt("127.0.0.1", node.gateway.grpcPort(), clientSystem)
                .withTls(false);
        grpcExecutions = ExecutionServiceClient.create(settings, clientSystem);
        grpcSandboxes = SandboxServiceClient.create(settings, clientSystem);
    }

    @AfterAll
    void stop() {
        if (grpcExecutions != null) {
            grpcExecutions.close();
            grpcSandboxes.close();
            clientSystem.terminate();
        }
        if (node != null) {
            node.close();
        }
    }

    private static String sleeper(String marker) {
        return "{\"language\":\"bash\",\"code\":\"echo ready\\nsleep " + marker + "\",\"limits\":{\"timeoutSeconds\":60}}";
    }

    private String createSandbox(String body) {
        TestNode.Reply created = node.post("/v1/sandboxes", TestNode.ALICE, body);
        assertEquals(201, created.status(), created.body());
        return created.json().get("id").asText();
    }

    @Test
    void runsCodeThroughTheCluster() {
        assertEquals(200, node.get("/readyz", null).status());
        TestNode.Reply r = node.post("/v1/executions", TestNode.ALICE, "{\"language\":\"python\",\"code\":\"print(1)\"}");
        assertEquals(200, r.status(), r.body());
        assertEquals("OK", r.json().get("verdict").asText());
        assertEquals("1\n", r.json().get("stdout").asText());
    }

    @Test
    void sandboxesAreTenantScopedInTheCluster() {
        String sid = createSandbox("{\"language\":\"bash\"}");
        String files = "/v1/sandboxes/" + sid + "/files/";
        assertEquals(200, node.send("PUT", files + "n.txt", TestNode.ALICE, "application/octet-stream",
                "7".getBytes(StandardCharsets.UTF_8)).status());
        TestNode.Reply run = node.post("/v1/sandboxes/" + sid + "/executions", TestNode.ALICE,
                "{\"language\":\"bash\",\"code\":\"cat n.txt\"}");
        assertEquals(200, run.status(), run.body());
        assertEquals("7", run.json().get("stdout").asText());
        assertEquals(404, node.post("/v1/sandboxes/" + sid + "/executions", TestNode.BOB,
                "{\"language\":\"bash\",\"code\":\"true\"}").status());
        assertEquals(404, node.get("/v1/sandboxes/" + sid, TestNode.BOB).status());
        assertEquals(404, node.get(files + "n.txt", TestNode.BOB).status());
        assertEquals(404, node.send("PUT", files + "n.txt", TestNode.BOB, "application/octet-stream", new byte[]{1}).status());
        assertEquals(200, node.delete("/v1/sandboxes/" + sid, TestNode.ALICE).status());
        assertEquals(404, node.get("/v1/sandboxes/" + sid, TestNode.ALICE).status());
        assertEquals(404, node.get(files + "n.txt", TestNode.ALICE).status(), "a closed sandbox has no files");
    }

    @Test
    void filesAreReadOutOfTheSandboxThroughTheCluster() throws Exception {
        String sid = createSandbox("{\"language\":\"python\"}");
        String files = "/v1/sandboxes/" + sid + "/files/";
        try {
            TestNode.Reply run = node.post("/v1/sandboxes/" + sid + "/executions", TestNode.ALICE,
                    "{\"language\":\"python\",\"code\":\"import os\\nos.makedirs('out', exist_ok=True)\\n"
                            + "open('out/answer.txt','w').write('42')\\nopen('big.bin','wb').write(b'x' * 2000)\"}");
            assertEquals("OK", run.json().get("verdict").asText(), run.body());

            TestNode.Reply got = node.get(files + "out/answer.txt", TestNode.ALICE);
            assertEquals(200, got.status(), got.body());
            assertEquals("42", got.body());

            TestNode.Reply missing = node.get(files + "nope.txt", TestNode.ALICE);
            assertEquals(404, missing.status(), missing.body());
            assertEquals("not_found", missing.errorCode());
            assertTrue(missing.json().path("error").path("message").asText().contains("nope.txt"), missing.body());

            TestNode.Reply big = node.get(files + "big.bin", TestNode.ALICE);
            assertEquals(413, big.status(), big.body());
            assertEquals("file_too_large", big.errorCode());

            for (String bad : List.of("..%2F..%2Fetc%2Fpasswd", "a%2F..%2F..%2Fx", "%2Fetc%2Fpasswd", "a%00b")) {
                TestNode.Reply r = node.get(files + bad, TestNode.ALICE);
                assertEquals(400, r.status(), bad + " -> " + r.body());
                assertEquals("invalid_request", r.errorCode());
            }
            assertEquals(404, node.get("/v1/sandboxes/sbx-never-made/files/a.txt", TestNode.ALICE).status());

            // the same through gRPC
            var content = Await.result(grpcSandboxes.readFile().addHeader("authorization", "Bearer " + TestNode.ALICE)
                    .invoke(FileRequest.newBuilder().setSandboxId(sid).setPath("out/answer.txt").build()));
            assertEquals("42", content.getContent().toStringUtf8());
            ExecutionException notFound = assertThrows(ExecutionException.class, () -> Await.result(grpcSandboxes.readFile()
                    .addHeader("authorization", "Bearer " + TestNode.ALICE)
                    .invoke(FileRequest.newBuilder().setSandboxId(sid).setPath("nope.txt").build())));
            assertEquals(Status.Code.NOT_FOUND, ((StatusRuntimeException) notFound.getCause()).getStatus().getCode());
        } finally {
            node.delete("/v1/sandboxes/" + sid, TestNode.ALICE);
        }
    }

    @Test
    void anImageIsHonouredForSandboxesAndExecutions() {
        String probe = "{\"language\":\"bash\",\"code\":\"command -v python3 >/dev/null && python3 -c 'print(6*7)' || echo no-python\"}";
        // bash's own image has no python; the python image has bash and python3
        String plain = createSandbox("{\"language\":\"bash\"}");
        String withImage = createSandbox("{\"language\":\"bash\",\"image\":\"agentexec/python:bookworm\"}");
        try {
            assertEquals("no-python\n", node.post("/v1/sandboxes/" + plain + "/executions", TestNode.ALICE, probe)
                    .json().get("stdout").asText());
            TestNode.Reply inImage = node.post("/v1/sandboxes/" + withImage + "/executions", TestNode.ALICE, probe);
            assertEquals("42\n", inImage.json().get("stdout").asText(), inImage.body());
        } finally {
            node.delete("/v1/sandboxes/" + plain, TestNode.ALICE);
            node.delete("/v1/sandboxes/" + withImage, TestNode.ALICE);
        }
        TestNode.Reply oneOff = node.post("/v1/executions", TestNode.ALICE, probe.replace("\"language\":\"bash\",",
                "\"language\":\"bash\",\"image\":\"agentexec/python:bookworm\","));
        assertEquals("42\n", oneOff.json().get("stdout").asText(), oneOff.body());

        TestNode.Reply refused = node.post("/v1/sandboxes", TestNode.ALICE, "{\"language\":\"bash\",\"image\":\"evil/image:1\"}");
        assertEquals(400, refused.status(), refused.body());
        assertTrue(refused.json().path("error").path("message").asText().contains("evil/image:1"), refused.body());
    }

    @Test
    void sseStreamsOutputWhileItRunsAndDeleteCancelsAndRemovesTheContainer() throws Exception {
        String marker = DockerProbe.marker();
        TestNode.Reply accepted = node.post("/v1/executions?async=true", TestNode.ALICE, sleeper(marker));
        assertEquals(202, accepted.status(), accepted.body());
        String id = accepted.json().get("id").asText();
        HttpResponse<InputStream> events = node.http.send(HttpRequest.newBuilder(URI.create(node.base + "/v1/executions/"
                        + id + "/events")).header("Authorization", "Bearer " + TestNode.ALICE).build(),
                HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, events.statusCode());
        try (BufferedReader sse = new BufferedReader(new InputStreamReader(events.body(), StandardCharsets.UTF_8))) {
            String event = TestNode.nextEvent(sse);
            assertTrue(event.contains("event: output") && event.contains("ready"), event);
            // the output came while the code still runs (it sleeps a minute): it is live, not the result's copy
            assertEquals("running", node.get("/v1/executions/" + id, TestNode.ALICE).json().get("status").asText());
            String container = docker.awaitContainerRunning(marker);

            TestNode.Reply cancelled = node.delete("/v1/executions/" + id, TestNode.ALICE);
            assertEquals(200, cancelled.status(), cancelled.body());
            assertEquals("cancelled", cancelled.json().get("status").asText(), cancelled.body());
            String end = TestNode.nextEvent(sse);
            while (end.contains("event: output")) {
                end = TestNode.nextEvent(sse);
            }
            assertTrue(end.contains("event: error") && end.contains("cancelled"), end);
            assertTrue(DockerProbe.eventually(() -> !docker.exists(container)), "the one-off's container is removed");
        }
        assertEquals(404, node.delete("/v1/executions/" + id, TestNode.BOB).status());
    }

    /** Sends a synchronous execution on a raw socket and returns it once the status line is in. */
    private Socket startSync(String path, String body) throws Exception {
        Socket socket = new Socket("127.0.0.1", node.gateway.httpPort());
        OutputStream out = socket.getOutputStream();
        out.write(("POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + TestNode.ALICE
                + "\r\nContent-Type: application/json\r\nContent-Length: " + body.length() + "\r\n\r\n" + body)
                .getBytes(StandardCharsets.UTF_8));
        out.flush();
        byte[] head = new byte[12];
        assertEquals(12, socket.getInputStream().readNBytes(head, 0, 12));
        assertEquals("HTTP/1.1 200", new String(head, StandardCharsets.US_ASCII));
        return socket;
    }

    @Test
    void aClientThatDisconnectsCancelsItsRunAndTheContainerIsRemoved() throws Exception {
        String marker = DockerProbe.marker();
        String container;
        try (Socket ignored = startSync("/v1/executions", sleeper(marker))) {
            container = docker.awaitContainerRunning(marker);
        }
        assertTrue(DockerProbe.eventually(() -> !docker.exists(container)), "the one-off's container is removed");
        assertTrue(DockerProbe.eventually(() -> node.metrics().body()
                .contains("agentexec_executions_refused_total{reason=\"cancelled\"}")));
    }

    @Test
    void aDisconnectInASandboxKillsTheRunAndTheSandboxStaysUsable() throws Exception {
        String sid = createSandbox("{\"language\":\"bash\"}");
        try {
            assertEquals(200, node.send("PUT", "/v1/sandboxes/" + sid + "/files/keep.txt", TestNode.ALICE,
                    "application/octet-stream", "kept".getBytes(StandardCharsets.UTF_8)).status());
            String marker = DockerProbe.marker();
            String container;
            try (Socket ignored = startSync("/v1/sandboxes/" + sid + "/executions", sleeper(marker))) {
                container = docker.awaitContainerRunning(marker);
            }
            assertTrue(DockerProbe.eventually(() -> !docker.runs(container, marker)), "the run is killed");
            assertTrue(docker.exists(container), "the sandbox keeps its container");
            TestNode.Reply after = node.post("/v1/sandboxes/" + sid + "/executions", TestNode.ALICE,
                    "{\"language\":\"bash\",\"code\":\"cat keep.txt\"}");
            assertEquals(200, after.status(), after.body());
            assertEquals("kept", after.json().get("stdout").asText(), after.body());
        } finally {
            assertEquals(200, node.delete("/v1/sandboxes/" + sid, TestNode.ALICE).status());
        }
    }

    @Test
    void grpcStreamsOutputWhileItRunsAndACancelledCallFreesTheContainer() throws Exception {
        String marker = DockerProbe.marker();
        // take(1): the client cancels the call as soon as the first event is in
        List<ExecutionEvent> first = Await.result(grpcExecutions.executeStream().addHeader("authorization", "Bearer " + TestNode.ALICE)
                .invoke(ExecuteRequest.newBuilder().setLanguage("bash").setCode("echo ready\nsleep " + marker)
                        .setLimits(Limits.newBuilder().setTimeoutSeconds(60)).build())
                .take(1).runWith(Sink.seq(), clientSystem));
        assertTrue(first.get(0).hasOutput(), first.toString());
        assertEquals("ready\n", first.get(0).getOutput().getData().toStringUtf8());
        // the run had started (it printed); once the call is gone, no container may still run it
        assertTrue(DockerProbe.eventually(() -> docker.containerRunning(marker).isEmpty()), "the run is stopped");
    }

    @Test
    void asyncAnswersAtOnceAndTheResultIsReadLater() throws Exception {
        TestNode.Reply accepted = node.post("/v1/executions?async=true", TestNode.ALICE,
                "{\"language\":\"python\",\"code\":\"import time\\ntime.sleep(1.5)\\nprint('late')\"}");
        assertEquals(202, accepted.status(), accepted.body());
        assertEquals("running", accepted.json().get("status").asText());
        String url = "/v1/executions/" + accepted.json().get("id").asText();
        TestNode.Reply read = node.get(url, TestNode.ALICE);
        for (int i = 0; i < 300 && read.json().get("status").asText().equals("running"); i++) {
            Thread.sleep(100);
            read = node.get(url, TestNode.ALICE);
        }
        JsonNode result = read.json().path("result");
        assertEquals("late\n", result.path("stdout").asText(), read.body());
        assertEquals(404, node.get(url, TestNode.BOB).status());
    }

    @Test
    void metricsShowTheWorkersQueue() {
        String metrics = node.metrics().body();
        assertTrue(metrics.contains("agentexec_worker_queue_depth{worker="), metrics);
        assertTrue(metrics.contains("agentexec_ready 1"), metrics);
        assertFalse(metrics.isEmpty());
    }

}
