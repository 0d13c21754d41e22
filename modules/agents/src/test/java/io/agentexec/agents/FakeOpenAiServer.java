package io.agentexec.agents;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * An OpenAI-compatible chat-completions endpoint on 127.0.0.1 that answers from a script: real
 * HTTP for the real client, no traffic off this machine. Records every request body.
 */
final class FakeOpenAiServer implements AutoCloseable {
    /** A scripted answer: a reply, an HTTP error status, or a reply held until released. */
    sealed interface Answer {
    }

    record Reply(String content, int promptTokens, int completionTokens) implements Answer {
    }

    record Status(int code) implements Answer {
    }

    record Held(Reply reply, CountDownLatch arrived, CountDownLatch release) implements Answer {
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private final HttpServer server;
    private final ConcurrentLinkedQueue<Answer> script = new ConcurrentLinkedQueue<>();
    private final List<JsonNode> requests = Collections.synchronizedList(new ArrayList<>());
    private final List<String> authorizations = Collections.synchronizedList(new ArrayList<>());

    FakeOpenAiServer() throws IOException {
        server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        server.createContext("/v1/chat/completions", this::handle);
        server.setExecutor(Executors.newCachedThreadPool());
        server.start();
    }

    String baseUrl() {
        return "http://127.0.0.1:" + server.getAddress().getPort() + "/v1";
    }

    FakeOpenAiServer reply(String content) {
        script.add(new Reply(content, 100, 20));
        return this;
    }

    FakeOpenAiServer status(int code) {
        script.add(new Status(code));
        return this;
    }

    FakeOpenAiServer add(Answer answer) {
        script.add(answer);
        return this;
    }

    List<JsonNode> requests() {
        return List.copyOf(requests);
    }

    List<String> authorizations() {
        return List.copyOf(authorizations);
    }

    int remaining() {
        return script.size();
    }

    private void handle(HttpExchange exchange) throws IOException {
        byte[] body = exchange.getRequestBody().readAllBytes();
        requests.add(JSON.readTree(body));
        authorizations.add(String.valueOf(exchange.getRequestHeaders().getFirst("Authorization")));
        Answer answer = script.poll();
        if (answer == null) {
            send(exchange, 500, "{\"error\":{\"message\":\"script exhausted\"}}");
            return;
        }
        if (answer instanceof Held held) {
            held.arrived().countDown();
            try {
                held.release().await(60, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            answer = held.reply();
        }
        if (answer instanceof Status s) {
            send(exchange, s.code(), "{\"error\":{\"message\":\"scripted status " + s.code() + "\",\"type\":\"scripted\"}}");
            return;
        }
        Reply r = (Reply) answer;
        ObjectNode root = JSON.createObjectNode();
        root.put("id", "chatcmpl-fake");
        root.put("object", "chat.completion");
        root.put("created", 1_700_000_000L);
        root.put("model", "fake-model");
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", 0);
        choice.putObject("message").put("role", "assistant").put("content", r.content());
        choice.put("finish_reason", "stop");
        root.putObject("usage").put("prompt_tokens", r.promptTokens()).put("completion_tokens", r.completionTokens())
                .put("total_tokens", r.promptTokens() + r.completionTokens());
        send(exchange, 200, JSON.writeValueAsString(root));
    }

    private static void send(HttpExchange exchange, int status, String json) throws IOException {
        byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().add("Content-Type", "application/json");
        exchange.sendResponseHeaders(status, bytes.length);
        try (var out = exchange.getResponseBody()) {
            out.write(bytes);
        }
    }

    @Override
    public void close() {
        server.stop(0);
        ((java.util.concurrent.ExecutorService) server.getExecutor()).shutdownNow();
    }
}
