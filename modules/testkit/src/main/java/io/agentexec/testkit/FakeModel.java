package io.agentexec.testkit;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * An OpenAI-compatible chat-completions endpoint on 127.0.0.1 answering from a script: real HTTP for the real client,
 * no traffic off this machine. Records every request body and Authorization header. An exhausted script answers 500.
 * The one fake model of every module's tests.
 */
public final class FakeModel implements AutoCloseable {
    /** A scripted answer: a reply, an HTTP error status, or a reply held until released. */
    public sealed interface Answer {
    }

    public record Reply(String content, int promptTokens, int completionTokens) implements Answer {
    }

    public record Status(int code) implements Answer {
    }

    /** Counts {@code arrived} down when its call arrives, answers {@code reply} once {@code release} is counted down. */
    public record Held(Reply reply, CountDownLatch arrived, CountDownLatch release) implements Answer {
        public static Held of(String content) {
            return new Held(new Reply(content, 100, 20), new CountDownLatch(1), new CountDownLatch(1));
        }
    }

    private static final ObjectMapper JSON = new ObjectMapper();
    private final HttpServer server;
    private final ConcurrentLinkedQueue<Answer> script = new ConcurrentLinkedQueue<>();
    private final List<Held> held = Collections.synchronizedList(new ArrayList<>());
    private final List<JsonNode> requests = Collections.synchronizedList(new ArrayList<>());
    private final List<String> authorizations = Collections.synchronizedList(new ArrayList<>());

    /** A model that answers these replies in order. */
    public FakeModel(String... replies) {
        try {
            server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        server.createContext("/v1/chat/completions", this::handle);
        server.setExecutor(Executors.newCachedThreadPool());
        server.start();
        then(replies);
    }

    /** The base URL an OpenAI client is given ({@code http://127.0.0.1:PORT/v1}). */
    public String baseUrl() {
        return "http://127.0.0.1:" + server.getAddress().getPort() + "/v1";
    }

    /** Appends replies to the script. */
    public FakeModel then(String... replies) {
        for (String reply : replies) {
            reply(reply);
        }
        return this;
    }

    public FakeModel reply(String content) {
        return add(new Reply(content, 100, 20));
    }

    public FakeModel status(int code) {
        return add(new Status(code));
    }

    public FakeModel add(Answer answer) {
        if (answer instanceof Held h) {
            held.add(h);
        }
        script.add(answer);
        return this;
    }

    public List<JsonNode> requests() {
        return List.copyOf(requests);
    }

    public List<String> authorizations() {
        return List.copyOf(authorizations);
    }

    /** Answers not yet given. */
    public int remaining() {
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
        if (answer instanceof Held h) {
            h.arrived().countDown();
            try {
                h.release().await(Await.WAIT.toMillis(), TimeUnit.MILLISECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            answer = h.reply();
        }
        if (answer instanceof Status s) {
            send(exchange, s.code(), "{\"error\":{\"message\":\"scripted status " + s.code() + "\",\"type\":\"scripted\"}}");
            return;
        }
        Reply r = (Reply) answer;
        ObjectNode root = JSON.createObjectNode();
        root.put("id", "chatcmpl-fake").put("object", "chat.completion").put("created", 1_700_000_000L)
                .put("model", "fake-model");
        ObjectNode choice = root.putArray("choices").addObject();
        choice.put("index", 0);
        choice.putObject("message").put("role", "assistant").put("content", r.content());
        choice.put("finish_reason", "stop");
        root.putObject("usage").put("prompt_tokens", r.promptTokens()).put("completion_tokens", r.completionTokens())
                .put("total_tokens", r.promptTokens() + r.completionTokens());
        send(exchange, 200, JSON.writeValueAsString(root));
    }

    private static void send(HttpExchange exchange, int status, String json) {
        byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
        exchange.getResponseHeaders().add("Content-Type", "application/json");
        try {
            exchange.sendResponseHeaders(status, bytes.length);
            try (var out = exchange.getResponseBody()) {
                out.write(bytes);
            }
        } catch (IOException e) {
            // the caller is gone (a test killed the node that asked): nobody to answer
        }
    }

    /** Releases every held answer, then stops the endpoint. */
    @Override
    public void close() {
        held.forEach(h -> h.release().countDown());
        server.stop(0);
        ((ExecutorService) server.getExecutor()).shutdownNow();
    }
}
