package io.agentexec.cluster;

import static io.agentexec.cluster.TestNodes.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * The admin routes on the management port: without the token or with another one they answer 401 and drain nothing;
 * with it, {@code GET /agentexec/node} says the worker serves and {@code POST /agentexec/drain} drains the node and
 * stops it (202), the way SIGTERM does. A token too short to be safe is refused at start, by name.
 */
class AdminRouteTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String TOKEN = "admin-route-test-token-0123456789";

    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    private HttpResponse<String> send(String method, String url, Optional<String> token) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(60))
                .method(method, HttpRequest.BodyPublishers.noBody());
        token.ifPresent(t -> request.header("Authorization", "Bearer " + t));
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void theDrainRouteNeedsTheTokenAndDrainsAndStopsTheNode() throws Exception {
        Path data = Files.createTempDirectory("agentexec-admin");
        int managementPort = TestNodes.freePort();
        AgentexecCluster node = TestNodes.start(TestNodes.common(TestNodes.freePort(), List.of(), "gateway,worker")
                + TestNodes.h2(data) + """
                agentexec.cluster.admin { token = "%s", host = "127.0.0.1", port = %d }
                """.formatted(TOKEN, managementPort));
        try {
            String base = "http://127.0.0.1:" + managementPort + "/agentexec/";
            assertEquals(401, send("POST", base + "drain", Optional.empty()).statusCode());
            HttpResponse<String> wrong = send("POST", base + "drain", Optional.of("not-the-admin-token-at-all"));
            assertEquals(401, wrong.statusCode(), wrong.body());
            assertTrue(wrong.body().contains("agentexec.cluster.admin.token"), wrong.body());
            assertEquals(401, send("GET", base + "node", Optional.empty()).statusCode());

            HttpResponse<String> status = send("GET", base + "node", Optional.of(TOKEN));
            assertEquals(200, status.statusCode(), status.body());
            JsonNode serving = JSON.readTree(status.body());
            assertEquals("serving", serving.path("worker").path("state").asText(), status.body());
            assertEquals(false, serving.path("stopping").asBoolean(), status.body());
            assertTrue(node.nodeShutdown().reason().isEmpty(), "the refused drains did nothing");

            HttpResponse<String> drain = send("POST", base + "drain", Optional.of(TOKEN));
            assertEquals(202, drain.statusCode(), drain.body());
            await(node.system().getWhenTerminated());
            assertEquals(Optional.of(NodeShutdown.DRAIN), node.nodeShutdown().reason());
            List<String> steps = node.nodeShutdown().steps().stream().map(NodeShutdown.Step::name).toList();
            assertEquals(List.of("worker drain", "sharding hand-over", "cluster leave", "engine release"), steps,
                    "the worker drained, then the node left");
            assertTrue(node.nodeShutdown().steps().stream().allMatch(s -> s.ended().isPresent()
                    && s.failure().isEmpty()), node.nodeShutdown().steps().toString());
        } finally {
            node.close();
        }
    }

    @Test
    void aShortAdminTokenIsRefusedByName() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ClusterSettings.fromConfig(
                TestNodes.config("agentexec.cluster.admin.token = \"short\"\n")));
        assertTrue(e.getMessage().contains("agentexec.cluster.admin.token"), e.getMessage());
    }
}
