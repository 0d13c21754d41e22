package io.agentexec.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.File;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
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
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

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

    /** Answers the first call with code; holds every later call until released, then says TERMINATE. */
    private static final class GatedModel implements AutoCloseable {
        final HttpServer server;
        final AtomicInteger calls = new AtomicInteger();
        final CountDownLatch secondCallArrived = new CountDownLatch(1);
        final CountDownLatch release = new CountDownLatch(1);

        GatedModel() throws IOException {
            server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
            server.createContext("/v1/chat/completions", this::handle);
            server.setExecutor(Executors.newCachedThreadPool());
            server.start();
        }

        String baseUrl() {
            return "http://127.0.0.1:" + server.getAddress().getPort() + "/v1";
        }

        private void handle(HttpExchange exchange) throws IOException {
            exchange.getRequestBody().readAllBytes();
            int call = calls.incrementAndGet();
            String reply;
            if (call == 1) {
                reply = "```python\nprint('the code ran')\n```";
            } else {
                secondCallArrived.countDown();
                try {
                    release.await(5, TimeUnit.MINUTES);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
                reply = "It printed its line.\nTERMINATE";
            }
            ObjectNode root = JSON.createObjectNode();
            root.put("id", "chatcmpl-" + call).put("object", "chat.completion").put("created", 1_700_000_000L)
                    .put("model", "gated-model");
            ObjectNode choice = root.putArray("choices").addObject();
            choice.put("index", 0).put("finish_reason", "stop");
            choice.putObject("message").put("role", "assistant").put("content", reply);
            root.putObject("usage").put("prompt_tokens", 10).put("completion_tokens", 5).put("total_tokens", 15);
            byte[] bytes = JSON.writeValueAsBytes(root);
            exchange.getResponseHeaders().add("Content-Type", "application/json");
            try {
                exchange.sendResponseHeaders(200, bytes.length);
                try (var out = exchange.getResponseBody()) {
                    out.write(bytes);
                }
            } catch (IOException e) {
                // the node that asked was killed; its socket is gone
            }
        }

        @Override
        public void close() {
            release.countDown();
            server.stop(0);
            ((ExecutorService) server.getExecutor()).shutdownNow();
        }
    }

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
        try (GatedModel model = new GatedModel()) {
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
                assertTrue(model.secondCallArrived.await(3, TimeUnit.MINUTES), () -> "no second model call: " + tail(log));
            } finally {
                first.destroyForcibly();
                first.waitFor(30, TimeUnit.SECONDS);
            }
            int callsBeforeCrash = model.calls.get();
            model.release.countDown();

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
                assertTrue(model.calls.get() > callsBeforeCrash, "the new node asked the model again");

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
