package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import io.agentexec.gateway.grpc.v1.ExecuteRequest;
import io.agentexec.gateway.grpc.v1.ExecutionResult;
import io.agentexec.gateway.grpc.v1.ExecutionServiceClient;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Clients that hold connections without finishing their requests, with raw sockets on loopback:
 * one client (127.0.0.1) opens more half-sent requests than the node holds connections, another
 * trickles its headers a byte at a time; a second client (127.0.0.2) must still be answered, the slow
 * connections must be closed after the header timeout, and long legitimate answers (a synchronous
 * run, gRPC) must not be cut by the short idle timeout this node runs with.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ConnectionLimitsTest {
    private static final int NODE_CONNECTIONS = 48;
    private static final int PER_CLIENT = 8;
    private static final Duration HEADER_TIMEOUT = Duration.ofSeconds(2);
    /** A bound on waiting for the node, never a speed goal: the machine is shared and slow. */
    private static final Duration WAIT = Duration.ofSeconds(60);

    private TestNode node;
    private final List<Socket> held = new ArrayList<>();

    @BeforeAll
    void start() throws Exception {
        node = TestNode.start("engine", Map.of(
                "agentexec.gateway.connections.max", NODE_CONNECTIONS,
                "agentexec.gateway.connections.max-per-client", PER_CLIENT,
                "agentexec.gateway.connections.header-timeout", HEADER_TIMEOUT.toMillis() + "ms",
                "agentexec.gateway.connections.body-timeout", "3s",
                // shorter than the runs below: only the heartbeat and HTTP/2 pings keep them alive
                "agentexec.gateway.connections.idle-timeout", "2s",
                "agentexec.gateway.connections.http2-ping-interval", "500ms",
                "agentexec.gateway.http.sse-keepalive", "500ms",
                // before this node had its own limits, pekko's was the only one
                "pekko.http.server.max-connections", NODE_CONNECTIONS));
    }

    @AfterAll
    void stop() {
        held.forEach(ConnectionLimitsTest::closeQuietly);
        if (node != null) {
            node.close();
        }
    }

    private Socket connect(String from) throws IOException {
        Socket socket = new Socket();
        socket.bind(new InetSocketAddress(InetAddress.getByName(from), 0));
        socket.connect(new InetSocketAddress("127.0.0.1", node.gateway.httpPort()), 5000);
        held.add(socket);
        return socket;
    }

    /** Half a request: the request line and some headers, never the blank line that ends them. */
    private Socket halfRequest() throws IOException {
        Socket socket = connect("127.0.0.1");
        OutputStream out = socket.getOutputStream();
        out.write(("POST /v1/executions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TestNode.ALICE
                + "\r\nContent-Type: application/json\r\n").getBytes(StandardCharsets.US_ASCII));
        out.flush();
        return socket;
    }

    @Test
    void halfSentRequestsAndASlowLorisNeitherStarveOthersNorLiveLong() throws Exception {
        // more half-sent requests from one client than the node holds connections at all
        List<Socket> halves = new ArrayList<>();
        Instant sent = Instant.now();
        for (int i = 0; i < NODE_CONNECTIONS + 16; i++) {
            try {
                halves.add(halfRequest());
            } catch (IOException refused) {
                // the backlog may be full: the point is holding what the node accepts
            }
        }

        // a slow loris (another address, so that the first one's limit does not stop it): one header
        // byte every 300 ms, never finished
        Socket loris = connect("127.0.0.7");
        Thread trickle = new Thread(() -> {
            try {
                OutputStream out = loris.getOutputStream();
                out.write("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".getBytes(StandardCharsets.US_ASCII));
                for (int i = 0; i < 1000; i++) {
                    out.write('a');
                    out.flush();
                    Thread.sleep(300);
                }
            } catch (IOException | InterruptedException closed) {
                // the node closed it: what this test wants
            }
        }, "slow-loris");
        trickle.setDaemon(true);
        trickle.start();

        // another client is answered, at once and while the slow ones still hold their connections
        String health = exchange("127.0.0.2", "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assertTrue(health.startsWith("HTTP/1.1 200"), health);
        assertTrue(health.contains("\"status\":\"ok\""), health);

        // every slow connection is closed, none of them before the header timeout
        for (Socket s : halves) {
            assertClosedWithin(s, WAIT);
        }
        Duration heldFor = Duration.between(sent, Instant.now());
        assertTrue(heldFor.compareTo(HEADER_TIMEOUT) >= 0, "closed after " + heldFor);
        assertClosedWithin(loris, WAIT);
        trickle.join(WAIT.toMillis());
    }

    @Test
    void oneConnectionOverTheClientsLimitIsRefusedAndTheOthersAreHeld() throws Exception {
        // One more connection than the limit, all from one client. Which of them is counted last is the node's
        // choice, not the order of connect(): each connection's guard starts in its own stream (a CI run saw the
        // ninth admitted and an earlier one refused), so exactly one of them, whichever, must be refused.
        List<Socket> mine = new ArrayList<>();
        for (int i = 0; i <= PER_CLIENT; i++) {
            mine.add(connect("127.0.0.3"));
        }
        // other clients are not limited by it
        String health = exchange("127.0.0.4", "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        assertTrue(health.startsWith("HTTP/1.1 200"), health);
        List<String> answers = new ArrayList<>();
        for (Socket s : mine) {
            answers.add(readAll(s, WAIT));
        }
        List<String> refused = answers.stream().filter(a -> a.startsWith("HTTP/1.1 429")).toList();
        assertEquals(1, refused.size(), answers::toString);
        assertTrue(refused.get(0).contains("too_many_connections"), refused.get(0));
        // the others were admitted: held (they send nothing) until the header timeout closed them, never refused
        answers.stream().filter(a -> !a.startsWith("HTTP/1.1 429"))
                .forEach(held -> assertTrue(held.isEmpty() || held.startsWith("HTTP/1.1 408"), held));
    }

    @Test
    void aBodyThatNeverArrivesWholeIsCut() throws Exception {
        Socket socket = connect("127.0.0.5");
        socket.getOutputStream().write(("POST /v1/executions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TestNode.ALICE
                + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"language\":").getBytes(StandardCharsets.US_ASCII));
        socket.getOutputStream().flush();
        String answer = readAll(socket, WAIT);
        // a 408 when the API noticed first, or a plain close by the connection's own clock
        assertTrue(answer.isEmpty() || answer.startsWith("HTTP/1.1 408"), answer);
    }

    @Test
    void aLongSynchronousRunAndAKeptAliveConnectionAreNotCut() throws Exception {
        // 3 s of run with a 2 s idle timeout: the heartbeat keeps the answer going
        TestNode.Reply run = node.post("/v1/executions", TestNode.ALICE,
                "{\"language\":\"python\",\"code\":\"import time\\ntime.sleep(3)\\nprint('done')\"}");
        assertEquals(200, run.status(), run.body());
        assertEquals("done\n", run.json().path("stdout").asText(), run.body());

        // one connection, two requests with a pause shorter than the idle timeout: keep-alive still works
        Socket socket = connect("127.0.0.6");
        OutputStream out = socket.getOutputStream();
        InputStream in = socket.getInputStream();
        for (int i = 0; i < 2; i++) {
            out.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
            out.flush();
            String answer = readResponse(in);
            assertTrue(answer.startsWith("HTTP/1.1 200"), answer);
            Thread.sleep(500);
        }
        // and an idle one is closed
        assertClosedWithin(socket, WAIT);
    }

    @Test
    void aLongGrpcCallThatSendsNothingIsNotCut() throws Exception {
        ActorSystem<Void> clientSystem = ActorSystem.create(Behaviors.empty(), "connection-limits-grpc",
                ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
        ExecutionServiceClient client = ExecutionServiceClient.create(GrpcClientSettings.connectToServiceAt("127.0.0.1",
                node.gateway.grpcPort(), clientSystem).withTls(false), clientSystem);
        try {
            ExecutionResult result = client.execute().addHeader("authorization", "Bearer " + TestNode.ALICE)
                    .invoke(ExecuteRequest.newBuilder().setLanguage("python")
                            .setCode("import time\ntime.sleep(3)\nprint('quiet')").build())
                    .toCompletableFuture().get(WAIT.toSeconds(), TimeUnit.SECONDS);
            assertEquals("quiet\n", result.getStdout());
        } finally {
            client.close();
            clientSystem.terminate();
        }
    }

    // ---- raw HTTP

    private String exchange(String from, String request) throws IOException {
        Socket socket = connect(from);
        socket.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
        socket.getOutputStream().flush();
        return readAll(socket, WAIT);
    }

    /** Everything the node sends until it closes the connection (or the wait ends: then what came). */
    private static String readAll(Socket socket, Duration wait) throws IOException {
        socket.setSoTimeout((int) wait.toMillis());
        ByteArrayOutputStream got = new ByteArrayOutputStream();
        try {
            socket.getInputStream().transferTo(got);
        } catch (SocketTimeoutException stillOpen) {
            throw new AssertionError("still open after " + wait + "; got: " + got.toString(StandardCharsets.UTF_8));
        } catch (IOException reset) {
            // a reset is a close too
        }
        return got.toString(StandardCharsets.UTF_8);
    }

    /** One response with a Content-Length body, read off a kept-alive connection. */
    private static String readResponse(InputStream in) throws IOException {
        StringBuilder head = new StringBuilder();
        while (!head.toString().endsWith("\r\n\r\n")) {
            int b = in.read();
            if (b < 0) {
                return head.toString();
            }
            head.append((char) b);
        }
        int length = head.toString().lines().filter(l -> l.toLowerCase().startsWith("content-length:"))
                .map(l -> Integer.parseInt(l.substring(15).trim())).findFirst().orElse(0);
        return head + new String(in.readNBytes(length), StandardCharsets.UTF_8);
    }

    private static void assertClosedWithin(Socket socket, Duration wait) throws IOException {
        socket.setSoTimeout((int) wait.toMillis());
        try {
            InputStream in = socket.getInputStream();
            while (in.read() >= 0) {
                // whatever the node sent before closing
            }
        } catch (SocketTimeoutException stillOpen) {
            throw new AssertionError("the connection from " + socket.getLocalAddress() + " is still open after " + wait);
        } catch (IOException reset) {
            // closed
        }
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException ignored) {
            // already closed
        }
    }
}
