package io.agentexec.gateway;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.port.ClusterPort;
import io.agentexec.cluster.port.EnginePort;
import io.agentexec.cluster.port.quota.ClusterSandboxQuota;
import io.agentexec.gateway.cluster.GatewayPeers;
import io.agentexec.gateway.spi.NoConversations;
import io.agentexec.gateway.tenant.TenantRegistry;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.SandboxEngine;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintStream;
import java.io.ByteArrayOutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.HashMap;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * A real gateway on 127.0.0.1 (port 0) over a real engine and Docker, with four tenants:
 * alice and bob (defaults), carol (one live sandbox at most), dave (a burst of 2, then 429).
 * This module's tests put the node together without the agents ({@link #withoutAgents}); the node module's tests
 * start the same nodes through its Guardian, conversations included.
 */
final class TestNode implements AutoCloseable {
    /** How a test node is put together from its configuration; {@code console} gets a first API key. */
    interface Composer {
        Composed compose(Config config, PrintStream console);
    }

    /** The gateway, and the whole node it is part of: closing that stops the gateway first, then what it serves. */
    record Composed(Gateway gateway, AutoCloseable node) { }

    static final String ALICE = "key-alice-0123456789";
    static final String BOB = "key-bob-0123456789";
    static final String CAROL = "key-carol-0123456789";
    static final String DAVE = "key-dave-0123456789";
    static final ObjectMapper JSON = new ObjectMapper();

    final Gateway gateway;
    private final AutoCloseable whole;
    final Path dir;
    final String base;
    final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(5)).build();
    final String console;

    private TestNode(Composed composed, Path dir, String console) {
        this.gateway = composed.gateway();
        this.whole = composed.node();
        this.dir = dir;
        this.base = "http://127.0.0.1:" + gateway.httpPort();
        this.console = console;
    }

    static TestNode start(String backend, Map<String, Object> overrides) throws IOException {
        return start(backend, overrides, TestNode::withoutAgents);
    }

    static TestNode start(String backend, Map<String, Object> overrides, Composer composer) throws IOException {
        Path dir = Files.createTempDirectory("agentexec-gateway-test");
        Path keys = dir.resolve("keys.json");
        Files.writeString(keys, """
                {"tenants": [
                  {"id": "alice", "keySha256": ["%s"]},
                  {"id": "bob", "keySha256": ["%s"]},
                  {"id": "carol", "keySha256": ["%s"], "maxLiveSandboxes": 1},
                  {"id": "dave", "keySha256": ["%s"], "requestsPerSecond": 0.01, "burst": 2}
                ]}
                """.formatted(TenantRegistry.sha256(ALICE), TenantRegistry.sha256(BOB), TenantRegistry.sha256(CAROL),
                TenantRegistry.sha256(DAVE)));
        Map<String, Object> settings = new HashMap<>();
        settings.put("agentexec.gateway.port", 0);
        settings.put("agentexec.gateway.metrics.port", 0);
        settings.put("agentexec.gateway.backend", backend);
        settings.put("agentexec.gateway.auth.keys-file", keys.toString());
        settings.put("agentexec.gateway.http.max-body-bytes", "64k");
        settings.put("agentexec.gateway.http.heartbeat-interval", "300ms");
        settings.put("agentexec.gateway.shutdown.drain-timeout", "60s");
        settings.put("agentexec.sandbox.docker.warm-pool.size", 1);
        settings.putAll(overrides);
        Config config = ConfigFactory.parseMap(settings).withFallback(ConfigFactory.load()).resolve();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        Composed composed = composer.compose(config, new PrintStream(out, true, StandardCharsets.UTF_8));
        return new TestNode(composed, dir, out.toString(StandardCharsets.UTF_8));
    }

    /**
     * The node as modules/node's Guardian puts it together, less the agents (this module does not depend on them:
     * conversations answer 501 here): a local actor system and the engine's port, or the cluster node, its port and
     * its gateway peers; the tenants; the gateway. Stopped in reverse order.
     */
    static Composed withoutAgents(Config config, PrintStream console) {
        GatewaySettings settings = GatewaySettings.fromConfig(config);
        EngineSettings engine = EngineSettings.fromConfig(config);
        Gateway.checkSettings(settings);
        Deque<AutoCloseable> started = new ArrayDeque<>();
        AutoCloseable whole = () -> {
            while (!started.isEmpty()) {
                started.pop().close();
            }
        };
        try {
            Gateway.Services services;
            if (settings.backend() == GatewaySettings.BackendKind.ENGINE) {
                ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), "agentexec-gateway",
                        ConfigFactory.parseString("pekko.actor.provider = local").withFallback(config));
                started.push(() -> {
                    system.terminate();
                    system.getWhenTerminated().toCompletableFuture().join();
                });
                EnginePort port = new EnginePort(SandboxEngine.start(engine), settings.engineSlots(), settings.engineQueue());
                started.push(port);
                services = new Gateway.Services(system, port, Gateway.tenantGuard(settings, () -> 1, console), () -> 1,
                        new NoConversations(), io.agentexec.cluster.executors.SeedExecutors.local(config));
            } else {
                AgentexecCluster cluster = AgentexecCluster.start(config);
                started.push(cluster);
                ClusterPort port = new ClusterPort(cluster, engine.languages(), settings.askTimeout(),
                        ClusterSandboxQuota.start(cluster, settings.askTimeout(), settings.quotas().reservationTimeout(),
                                settings.quotas().snapshotEvery()),
                        settings.visibilityPoll().min(), settings.visibilityPoll().max());
                started.push(port);
                GatewayPeers peers = GatewayPeers.start(cluster.system());
                services = new Gateway.Services(cluster.system(), port,
                        Gateway.tenantGuard(settings, cluster.settings().persistence(), peers, console), peers,
                        new NoConversations(), io.agentexec.cluster.executors.SeedExecutors.cluster(cluster, config));
            }
            Gateway gateway = Gateway.start(config, services);
            started.push(gateway);
            return new Composed(gateway, whole);
        } catch (RuntimeException e) {
            try {
                whole.close();
            } catch (Exception stopping) {
                e.addSuppressed(stopping);
            }
            throw e;
        }
    }

    record Reply(int status, Map<String, java.util.List<String>> headers, String body) {
        JsonNode json() {
            try {
                return JSON.readTree(body);
            } catch (IOException e) {
                throw new AssertionError("not JSON (" + status + "): " + body, e);
            }
        }

        String header(String name) {
            return headers.entrySet().stream().filter(e -> e.getKey().equalsIgnoreCase(name))
                    .map(e -> e.getValue().get(0)).findFirst().orElse(null);
        }

        String errorCode() {
            return json().path("error").path("code").asText();
        }
    }

    Reply send(String method, String path, String key, String contentType, byte[] body) {
        return send(method, path, key, contentType, body, Map.of());
    }

    Reply send(String method, String path, String key, String contentType, byte[] body, Map<String, String> headers) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(base + path)).timeout(Duration.ofSeconds(120))
                .method(method, body == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofByteArray(body));
        if (key != null) {
            b.header("Authorization", "Bearer " + key);
        }
        if (contentType != null) {
            b.header("Content-Type", contentType);
        }
        headers.forEach(b::header);
        try {
            HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
            return new Reply(r.statusCode(), r.headers().map(), r.body());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    Reply post(String path, String key, String json) {
        return send("POST", path, key, "application/json", json.getBytes(StandardCharsets.UTF_8));
    }

    Reply get(String path, String key) {
        return send("GET", path, key, null, null);
    }

    Reply delete(String path, String key) {
        return send("DELETE", path, key, null, null);
    }

    /** GET /metrics on the node's metrics listener (loopback), with the metrics token when one is given. */
    Reply metrics(String token) {
        return metricsPath("/metrics", token);
    }

    /** GET {@code path} on the node's metrics listener. */
    Reply metricsPath(String path, String token) {
        int port = gateway.metricsPort().orElseThrow(() -> new AssertionError("this node has no metrics listener"));
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + path))
                .timeout(Duration.ofSeconds(120)).GET();
        if (token != null) {
            b.header("Authorization", "Bearer " + token);
        }
        try {
            HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
            return new Reply(r.statusCode(), r.headers().map(), r.body());
        } catch (IOException e) {
            throw new java.io.UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    Reply metrics() {
        return metrics(null);
    }

    @Override
    public void close() {
        try {
            whole.close();
        } catch (Exception e) {
            throw new IllegalStateException("stopping the test node failed", e);
        }
    }
    /** The next Server-Sent Event (its lines up to the blank one), skipping keep-alive comments. */
    static String nextEvent(BufferedReader sse) throws IOException {
        StringBuilder event = new StringBuilder();
        String line;
        while ((line = sse.readLine()) != null) {
            if (line.isEmpty()) {
                if (!event.isEmpty()) {
                    return event.toString();
                }
                continue;
            }
            if (!line.startsWith(":")) {
                event.append(line).append('\n');
            }
        }
        return event.toString();
    }
}
