package io.agentexec.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.DriverManager;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import io.agentexec.testkit.FakeModel;

/**
 * A conversation survives the crash of its node mid-turn: the node is a real JVM (what
 * {@code bin/agentexec serve} runs) with its journal in PostgreSQL; it is killed with SIGKILL while
 * the assistant's second model call is in flight, after the code ran. A new node on the same
 * database wakes the chat by itself, asks the model again, and ends it: every message once, in
 * order, and the code run exactly once.
 */
class ConversationNodeCrashTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String PG_URL = "jdbc:postgresql://127.0.0.1:5432/agentexec";
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    private Process startNode(Path config, Path log) throws IOException {
        String java = System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
        return new ProcessBuilder(java, "-Xmx512m", "-cp", System.getProperty("java.class.path"),
                AgentexecMain.class.getName(), "serve", config.toString())
                .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile())).start();
    }

    private void awaitReady(String base, Process node, Path log) throws Exception {
        for (int i = 0; i < 1200; i++) {
            assertTrue(node.isAlive(), () -> "the node died: " + tail(log));
            try {
                if (get(base + "/readyz").statusCode() == 200) {
                    return;
                }
            } catch (IOException notYet) {
                // not listening yet
            }
            Thread.sleep(100);
        }
        throw new AssertionError("node not ready: " + tail(log));
    }

    private static String tail(Path log) {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 40), lines.size()));
        } catch (IOException e) {
            return "(no log)";
        }
    }

    private HttpResponse<String> get(String url) throws Exception {
        return http.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void aConversationResumesOnANewNodeAfterItsNodeIsKilledMidTurn() throws Exception {
        String schema = "crash_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
        Path dir = Files.createTempDirectory("agentexec-crash");
        Path log = dir.resolve("nodes.log");
        int port = freePort();
        String base = "http://127.0.0.1:" + port;
        // The first call is answered with code; the second is held until the node that made it is killed; every
        // later call (the new node's) is answered at once.
        FakeModel.Held held = FakeModel.Held.of("It printed its line.\nTERMINATE");
        try (FakeModel model = new FakeModel("```python\nprint('the code ran')\n```").add(held)
                .then("It printed its line.\nTERMINATE", "It printed its line.\nTERMINATE")) {
            Path config = dir.resolve("node.conf");
            Files.writeString(config, """
                    agentexec.gateway.port = %d
                    agentexec.gateway.metrics.port = 0
                    agentexec.gateway.auth.mode = none
                    agentexec.cluster.persistence {
                      dialect = postgresql
                      url = "%s"
                      user = agentexec
                      password = agentexec
                      schema = "%s"
                    }
                    pekko.remote.artery.canonical.port = 0
                    agentexec.agents.llm.base-url = "%s"
                    agentexec.agents.llm.api-key-env = ""
                    """.formatted(port, PG_URL, schema, model.baseUrl()));

            Process first = startNode(config, log);
            String id;
            try {
                awaitReady(base, first, log);
                HttpResponse<String> started = http.send(HttpRequest.newBuilder(URI.create(base + "/v1/conversations"))
                        .timeout(Duration.ofSeconds(60)).header("Content-Type", "application/json")
                        .POST(HttpRequest.BodyPublishers.ofString("""
                                {"config": {"assistant": {"name": "coding_assistant", "llm_config": {"model": "default"}},
                                            "user_proxy": {"name": "code_executor", "human_input_mode": "NEVER",
                                                           "code_execution_config": {"work_dir": "w", "use_docker": true, "timeout": 30}}},
                                 "message": "Print a line"}""")).build(), HttpResponse.BodyHandlers.ofString());
                assertEquals(201, started.statusCode(), started.body());
                id = JSON.readTree(started.body()).get("id").asText();
                assertTrue(held.arrived().await(3, TimeUnit.MINUTES), () -> "no second model call: " + tail(log));
            } finally {
                first.destroyForcibly();
                first.waitFor(30, TimeUnit.SECONDS);
            }
            int callsBeforeCrash = model.requests().size();
            held.release().countDown();

            Process second = startNode(config, log);
            try {
                awaitReady(base, second, log);
                JsonNode transcript = null;
                for (int i = 0; i < 1800; i++) {
                    HttpResponse<String> r = get(base + "/v1/conversations/" + id);
                    if (r.statusCode() == 200) {
                        transcript = JSON.readTree(r.body());
                        if (transcript.get("status").asText().equals("ended")) {
                            break;
                        }
                    }
                    Thread.sleep(100);
                }
                JsonNode t = transcript;
                assertTrue(t != null && t.get("status").asText().equals("ended"), () -> "not ended: " + t + "\n" + tail(log));
                assertTrue(model.requests().size() > callsBeforeCrash, "the new node asked the model again");

                List<String> types = new ArrayList<>();
                long previous = 0;
                int codeOutputs = 0;
                int terminations = 0;
                for (JsonNode e : t.get("events")) {
                    long sequence = e.get("sequence").asLong();
                    assertTrue(sequence > previous, () -> "events in order without repeats: " + t);
                    previous = sequence;
                    types.add(e.get("type").asText());
                    String body = e.get("body").toString();
                    if (e.get("type").asText().equals("message-sent") && body.contains("Code output: the code ran")) {
                        codeOutputs++;
                    }
                    if (e.get("type").asText().equals("message-sent") && body.contains("TERMINATE")) {
                        terminations++;
                    }
                }
                assertEquals(1, types.stream().filter(x -> x.equals("execution-completed")).count(), () -> "ran once: " + t);
                assertEquals(1, codeOutputs, () -> "the execution's reply once: " + t);
                assertEquals(1, terminations, () -> "the final answer once: " + t);
                assertEquals(4, types.stream().filter(x -> x.equals("message-sent")).count(),
                        () -> "user, code, result, answer: " + t);
            } finally {
                second.destroy();
                second.waitFor(60, TimeUnit.SECONDS);
                second.destroyForcibly();
            }
        } finally {
            try (var c = DriverManager.getConnection(PG_URL, "agentexec", "agentexec"); var s = c.createStatement()) {
                s.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
            }
        }
    }
}
