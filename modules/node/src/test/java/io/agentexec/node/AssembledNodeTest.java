package io.agentexec.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.agentexec.node.cli.Cli;
import io.agentexec.node.cli.ServeCommand;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import io.agentexec.testkit.FakeModel;

/**
 * The node {@code bin/agentexec serve} runs, assembled in this JVM through the same entry point
 * (ServeCommand.start, the Guardian): cluster + agents + gateway on one actor system, driven over real HTTP on
 * 127.0.0.1 with real Docker sandboxes and an H2 journal.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AssembledNodeTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    private FakeModel model;
    private Guardian.Node node;
    private String base;

    @BeforeAll
    void start() throws Exception {
        model = new FakeModel("```python\nprint(sum(range(10)))\n```", "The sum is 45.\nTERMINATE");
        Path dir = Files.createTempDirectory("agentexec-node-test");
        Path config = dir.resolve("node.conf");
        Files.writeString(config, """
                agentexec.gateway.port = 0
                agentexec.gateway.metrics.port = 0
                agentexec.gateway.auth.mode = none
                agentexec.cluster.persistence.url = "jdbc:h2:mem:node-%s;DB_CLOSE_DELAY=-1;DATABASE_TO_UPPER=false"
                pekko.remote.artery.canonical.port = 0
                pekko.coordinated-shutdown.run-by-jvm-shutdown-hook = off
                agentexec.agents.llm.base-url = "%s"
                agentexec.agents.llm.api-key-env = ""
                # the product's default, which the test run's AGENTEXEC_ZYGOTE=true would otherwise replace
                agentexec.sandbox.zygote.enabled = auto
                """.formatted(UUID.randomUUID(), model.baseUrl()));
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        node = ServeCommand.start(List.of(config.toString()), Map.of(), new PrintStream(console, true, StandardCharsets.UTF_8));
        base = "http://127.0.0.1:" + node.httpPort();
        assertTrue(console.toString(StandardCharsets.UTF_8).contains("conversations on"), console.toString());
        for (int i = 0; i < 300 && get("/readyz").statusCode() != 200; i++) {
            Thread.sleep(100);
        }
    }

    @AfterAll
    void stop() {
        if (node != null) {
            node.close();
        }
        if (model != null) {
            model.close();
        }
    }

    private HttpResponse<String> get(String path) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(60)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> post(String path, String json) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(120))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(json)).build(),
                HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void oneNodeRunsAnExecutionThroughItsCluster() throws Exception {
        assertEquals(200, get("/readyz").statusCode());
        JsonNode health = JSON.readTree(get("/healthz").body());
        assertEquals("cluster", health.get("backend").asText());
        HttpResponse<String> r = post("/v1/executions", "{\"language\":\"python\",\"code\":\"print(2 + 3)\"}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode result = JSON.readTree(r.body());
        assertEquals("OK", result.get("verdict").asText());
        assertEquals("5\n", result.get("stdout").asText());
    }

    /**
     * zygote.enabled = auto, as shipped: the node measures forks against plain starts on this machine, says what it
     * found at /readyz, and its blocks start that way (which way is the machine's: see ZygoteProbeEngineTest).
     */
    @Test
    void theNodeSaysAtReadyzWhichStartItFoundCheaperHereAndItsBlocksStartThatWay() throws Exception {
        String detail = JSON.readTree(get("/readyz").body()).get("detail").asText();
        for (int i = 0; i < 1200 && detail.contains("until the probe has measured"); i++) {
            Thread.sleep(100);
            detail = JSON.readTree(get("/readyz").body()).get("detail").asText();
        }
        boolean zygotes = detail.contains("blocks start as zygotes (a forked block cost");
        assertTrue(zygotes || detail.contains("blocks start as plain starts (a forked block cost"), detail);
        assertTrue(detail.endsWith("(agentexec.sandbox.zygote.enabled = auto)"), detail);
        HttpResponse<String> r = post("/v1/executions", "{\"blocks\": [{\"language\": \"python\", \"code\": \"print(1)\"},"
                + " {\"language\": \"python\", \"code\": \"print(2)\"}]}");
        assertEquals(200, r.statusCode(), r.body());
        JsonNode result = JSON.readTree(r.body());
        assertEquals("1\n2\n", result.get("stdout").asText(), r.body());
        assertEquals(zygotes ? "zygote" : "exec", result.get("blocks").get(1).get("start").asText(), detail + "\n" + r.body());
    }

    @Test
    void oneNodeRunsAConversationWithALiveModelOverHttp() throws Exception {
        HttpResponse<String> started = post("/v1/conversations", """
                {"config": {"assistant": {"name": "coding_assistant", "llm_config": {"model": "default"}},
                            "user_proxy": {"name": "code_executor", "human_input_mode": "NEVER",
                                           "code_execution_config": {"work_dir": "w", "use_docker": true, "timeout": 30}}},
                 "message": "Sum the numbers below ten"}""");
        assertEquals(201, started.statusCode(), started.body());
        String id = JSON.readTree(started.body()).get("id").asText();
        JsonNode t = null;
        for (int i = 0; i < 1200; i++) {
            t = JSON.readTree(get("/v1/conversations/" + id).body());
            if (t.get("status").asText().equals("ended")) {
                break;
            }
            Thread.sleep(100);
        }
        assertEquals("ended", t.get("status").asText(), t.toString());
        assertTrue(t.toString().contains("exitcode: 0 (execution succeeded)\\nCode output: 45\\n"), t.toString());
        assertTrue(t.toString().contains("The sum is 45."), t.toString());
    }

    @Test
    void chatWithServerRunsTheSeedsChatOnTheNode() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Cli.run(List.of("chat", "--server", base, "--model", "replay-median", "--use-docker", "true"),
                Map.of(), new ByteArrayInputStream(new byte[0]), new PrintStream(out, true, StandardCharsets.UTF_8),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        String printed = out.toString(StandardCharsets.UTF_8);
        assertEquals(0, code, printed + err.toString(StandardCharsets.UTF_8));
        assertTrue(printed.contains("Code output: odd: 2\neven: 2.5\n"), printed);
        assertTrue(printed.contains("chat ended: termination message from coding_assistant"), printed);
    }

    @Test
    void chatWithServerRefusesAnUnknownOption() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = Cli.run(List.of("chat", "--server", base, "--colour", "red"), Map.of(),
                new ByteArrayInputStream(new byte[0]), new PrintStream(new ByteArrayOutputStream()),
                new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(2, code);
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("unknown chat option --colour"));
    }
}
