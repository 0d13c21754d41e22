package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.ConfigFactory;
import io.agentexec.gateway.grpc.v1.CreateSandboxRequest;
import io.agentexec.gateway.grpc.v1.Execution;
import io.agentexec.gateway.grpc.v1.ExecutionServiceClient;
import io.agentexec.gateway.grpc.v1.GetExecutionRequest;
import io.agentexec.gateway.grpc.v1.SandboxServiceClient;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.sql.DriverManager;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;
import io.agentexec.testkit.Await;

/**
 * Two gateway+worker nodes of one cluster (two actor systems on 127.0.0.1 in this JVM), their journal
 * in the local PostgreSQL (a schema of their own), real Docker, real HTTP and gRPC: what one node
 * accepted is read, followed and cancelled on the other, tenants stay apart, the live-sandbox quota
 * and the request rate hold across both, and a result outlives the node that accepted it.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class TwoGatewayNodesTest {
    private static final String PG_URL = "jdbc:postgresql://127.0.0.1:5432/agentexec";
    private static final String PG_USER = "agentexec";
    private static final String PG_PASSWORD = "agentexec";
    /** How long the cluster gets to form, hand over shards or finish a run; never a timing goal. */
    private static final Duration WAIT = Duration.ofMinutes(2);
    private static final int WORKER_SLOTS = 1;
    private static final int WORKER_QUEUE = 1;

    private final String schema = "agentexec_gw_test_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
    private TestNode a;
    private TestNode b;
    private ActorSystem<Void> clientSystem;
    private ExecutionServiceClient grpcExecutionsOnB;
    private SandboxServiceClient grpcSandboxesOnB;

    @BeforeAll
    void start() throws Exception {
        int portA = freePort();
        int portB = freePort();
        a = TestNode.start("cluster", nodeSettings(portA, portA, "node-a"));
        b = TestNode.start("cluster", nodeSettings(portB, portA, "node-b"));
        Await.until("both nodes see both workers and both gateways", () ->
                a.get("/readyz", null).body().contains("2 worker(s)") && b.get("/readyz", null).body().contains("2 worker(s)")
                        && a.gateway.gatewayNodes() == 2 && b.gateway.gatewayNodes() == 2);
        clientSystem = ActorSystem.create(Behaviors.empty(), "two-nodes-grpc-client",
                ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
        GrpcClientSettings onB = GrpcClientSettings.connectToServiceAt("127.0.0.1", b.gateway.grpcPort(), clientSystem)
                .withTls(false);
        grpcExecutionsOnB = ExecutionServiceClient.create(onB, clientSystem);
        grpcSandboxesOnB = SandboxServiceClient.create(onB, clientSystem);
    }

    private Map<String, Object> nodeSettings(int port, int seedPort, String nodeName) {
        Map<String, Object> s = new HashMap<>();
        s.put("agentexec.cluster.node-name", nodeName);
        s.put("pekko.remote.artery.canonical.hostname", "127.0.0.1");
        s.put("pekko.remote.artery.canonical.port", port);
        s.put("agentexec.cluster.seed-nodes", "pekko://agentexec@127.0.0.1:" + seedPort);
        s.put("agentexec.cluster.persistence.dialect", "postgresql");
        s.put("agentexec.cluster.persistence.url", PG_URL);
        s.put("agentexec.cluster.persistence.user", PG_USER);
        s.put("agentexec.cluster.persistence.password", PG_PASSWORD);
        s.put("agentexec.cluster.persistence.schema", schema);
        s.put("pekko.cluster.split-brain-resolver.stable-after", "2s");
        s.put("pekko.cluster.failure-detector.heartbeat-interval", "500ms");
        s.put("pekko.cluster.failure-detector.acceptable-heartbeat-pause", "2s");
        // two workers of one slot and one queue place each: a burst of a dozen runs overloads the cluster
        s.put("agentexec.cluster.worker.slots", WORKER_SLOTS);
        s.put("agentexec.cluster.worker.queue", WORKER_QUEUE);
        // an async answer as soon as the gateway may give it, so that a late refusal has every chance to follow it
        s.put("agentexec.gateway.http.admission-grace", "1ms");
        s.put("agentexec.gateway.executions.visibility-poll.min", "1ms");
        return s;
    }

    @AfterAll
    void stop() throws Exception {
        if (clientSystem != null) {
            grpcExecutionsOnB.close();
            grpcSandboxesOnB.close();
            clientSystem.terminate();
        }
        if (b != null) {
            b.close();
        }
        if (a != null) {
            a.close();
        }
        try (var connection = DriverManager.getConnection(PG_URL, PG_USER, PG_PASSWORD);
             var statement = connection.createStatement()) {
            statement.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
        }
    }

    @Test
    @Order(1)
    void anAsyncExecutionAcceptedOnAIsReadOnBAndOnlyByItsTenant() throws Exception {
        TestNode.Reply accepted = a.post("/v1/executions?async=true", TestNode.ALICE,
                "{\"language\":\"python\",\"code\":\"import time\\ntime.sleep(1)\\nprint('from A')\"}");
        assertEquals(202, accepted.status(), accepted.body());
        String id = accepted.json().get("id").asText();
        String url = "/v1/executions/" + id;

        JsonNode read = awaitEnded(b, url, TestNode.ALICE);
        assertEquals("completed", read.path("status").asText(), read.toString());
        assertEquals("from A\n", read.path("result").path("stdout").asText(), read.toString());
        assertEquals(id, read.path("id").asText());
        // the start time travels in the id: B says the same as A
        assertEquals(a.get(url, TestNode.ALICE).json().path("startedAt").asText(), read.path("startedAt").asText());

        TestNode.Reply otherTenant = b.get(url, TestNode.BOB);
        assertEquals(404, otherTenant.status(), otherTenant.body());
        assertEquals(404, b.get(url + "/events", TestNode.BOB).status());
        assertEquals(404, b.delete(url, TestNode.BOB).status());
        assertEquals(404, b.get("/v1/executions/exe-" + UUID.randomUUID(), TestNode.ALICE).status());

        // events of an execution that ended elsewhere: its outcome alone
        try (BufferedReader sse = events(b, url, TestNode.ALICE)) {
            String event = TestNode.nextEvent(sse);
            assertTrue(event.contains("event: result") && event.contains("from A"), event);
        }

        // gRPC's GetExecution on B
        Execution viaGrpc = Await.result(grpcExecutionsOnB.getExecution().addHeader("authorization", "Bearer " + TestNode.ALICE)
                .invoke(GetExecutionRequest.newBuilder().setExecutionId(id).build()));
        assertEquals("completed", viaGrpc.getStatus());
        assertEquals("from A\n", viaGrpc.getResult().getStdout());
        ExecutionException notFound = assertThrows(ExecutionException.class, () -> Await.result(grpcExecutionsOnB.getExecution()
                .addHeader("authorization", "Bearer " + TestNode.BOB)
                .invoke(GetExecutionRequest.newBuilder().setExecutionId(id).build())));
        assertEquals(Status.Code.NOT_FOUND, ((StatusRuntimeException) notFound.getCause()).getStatus().getCode());
    }

    @Test
    @Order(2)
    void bFollowsTheLiveOutputOfARunOnAAndCancelsIt() throws Exception {
        TestNode.Reply accepted = a.post("/v1/executions?async=true", TestNode.ALICE,
                "{\"language\":\"bash\",\"code\":\"for i in $(seq 1 600); do echo tick $i; sleep 0.1; done\","
                        + "\"limits\":{\"timeoutSeconds\":120}}");
        assertEquals(202, accepted.status(), accepted.body());
        String url = "/v1/executions/" + accepted.json().get("id").asText();
        try (BufferedReader sse = events(b, url, TestNode.ALICE)) {
            String event = TestNode.nextEvent(sse);
            assertTrue(event.contains("event: output") && event.contains("tick"), event);
            // output while the code still runs (a minute of ticks): live from the worker, not the result's copy
            assertEquals("running", b.get(url, TestNode.ALICE).json().path("status").asText());

            TestNode.Reply cancelled = b.delete(url, TestNode.ALICE);
            assertEquals(200, cancelled.status(), cancelled.body());
            assertEquals("cancelled", cancelled.json().path("status").asText(), cancelled.body());
            String end = TestNode.nextEvent(sse);
            while (end.contains("event: output")) {
                end = TestNode.nextEvent(sse);
            }
            assertTrue(end.contains("event: error") && end.contains("cancelled"), end);
        }
        // A, which took it, learns the same outcome from the cluster
        Await.until("A reports the cancellation", () -> a.get(url, TestNode.ALICE).json().path("status").asText()
                .equals("cancelled"));
    }

    /** A run inside a sandbox is one record too: read, followed live, cancelled on the node that did not take it. */
    @Test
    @Order(2)
    void aSandboxRunAcceptedOnAIsReadFollowedAndCancelledOnB() throws Exception {
        TestNode.Reply created = a.post("/v1/sandboxes", TestNode.ALICE, "{\"language\":\"bash\"}");
        assertEquals(201, created.status(), created.body());
        String sandbox = created.json().get("id").asText();
        String runs = "/v1/sandboxes/" + sandbox + "/executions";
        try {
            TestNode.Reply accepted = a.post(runs + "?async=true", TestNode.ALICE,
                    "{\"language\":\"bash\",\"code\":\"echo in-sandbox > f.txt; cat f.txt\"}");
            assertEquals(202, accepted.status(), accepted.body());
            String id = accepted.json().get("id").asText();
            String url = "/v1/executions/" + id;

            JsonNode read = awaitEnded(b, url, TestNode.ALICE);
            assertEquals("completed", read.path("status").asText(), read.toString());
            assertEquals("in-sandbox\n", read.path("result").path("stdout").asText(), read.toString());
            assertEquals(a.get(url, TestNode.ALICE).json().path("startedAt").asText(), read.path("startedAt").asText());
            assertEquals(404, b.get(url, TestNode.BOB).status());
            assertEquals(404, b.get(url + "/events", TestNode.BOB).status());
            assertEquals(404, b.delete(url, TestNode.BOB).status());
            try (BufferedReader sse = events(b, url, TestNode.ALICE)) {
                String event = TestNode.nextEvent(sse);
                assertTrue(event.contains("event: result") && event.contains("in-sandbox"), event);
            }
            Execution viaGrpc = Await.result(grpcExecutionsOnB.getExecution().addHeader("authorization", "Bearer " + TestNode.ALICE)
                    .invoke(GetExecutionRequest.newBuilder().setExecutionId(id).build()));
            assertEquals("completed", viaGrpc.getStatus());
            assertEquals("in-sandbox\n", viaGrpc.getResult().getStdout());

            // a long one: B follows its output live and cancels it; the sandbox stays usable
            TestNode.Reply ticking = a.post(runs + "?async=true", TestNode.ALICE,
                    "{\"language\":\"bash\",\"code\":\"for i in $(seq 1 600); do echo tick $i; sleep 0.1; done\","
                            + "\"limits\":{\"timeoutSeconds\":120}}");
            assertEquals(202, ticking.status(), ticking.body());
            String tickUrl = "/v1/executions/" + ticking.json().get("id").asText();
            try (BufferedReader sse = events(b, tickUrl, TestNode.ALICE)) {
                String event = TestNode.nextEvent(sse);
                assertTrue(event.contains("event: output") && event.contains("tick"), event);
                assertEquals("running", b.get(tickUrl, TestNode.ALICE).json().path("status").asText());
                TestNode.Reply cancelled = b.delete(tickUrl, TestNode.ALICE);
                assertEquals(200, cancelled.status(), cancelled.body());
                assertEquals("cancelled", cancelled.json().path("status").asText(), cancelled.body());
                String end = TestNode.nextEvent(sse);
                while (end.contains("event: output")) {
                    end = TestNode.nextEvent(sse);
                }
                assertTrue(end.contains("event: error") && end.contains("cancelled"), end);
            }
            Await.until("A reports the cancellation", () -> a.get(tickUrl, TestNode.ALICE).json().path("status").asText()
                    .equals("cancelled"));
            TestNode.Reply after = b.post(runs, TestNode.ALICE, "{\"language\":\"bash\",\"code\":\"cat f.txt\"}");
            assertEquals(200, after.status(), after.body());
            assertEquals("in-sandbox\n", after.json().path("stdout").asText(), after.body());
        } finally {
            a.delete("/v1/sandboxes/" + sandbox, TestNode.ALICE);
        }
    }

    /**
     * A sandbox created on A with executor options (policy, retries, executor) applies them to its runs on B, over HTTP
     * and gRPC: the defaults are in the journal, not in A's memory; a run's own options win; GET on B shows them.
     */
    @Test
    @Order(2)
    void aSandboxsExecutorDefaultsGovernItsRunsThroughEitherNode() throws Exception {
        TestNode.Reply created = a.post("/v1/sandboxes", TestNode.ALICE,
                "{\"language\":\"python\",\"policy\":\"secure\",\"retries\":2,\"executor\":\"analyst\"}");
        assertEquals(201, created.status(), created.body());
        String sandbox = created.json().get("id").asText();
        String runs = "/v1/sandboxes/" + sandbox + "/executions";
        try {
            JsonNode defaults = b.get("/v1/sandboxes/" + sandbox, TestNode.ALICE).json().path("defaults");
            assertEquals("secure", defaults.path("policy").asText(), defaults.toString());
            assertEquals(2, defaults.path("retries").asInt(), defaults.toString());
            assertEquals("analyst", defaults.path("executor").asText(), defaults.toString());

            TestNode.Reply refused = b.post(runs, TestNode.ALICE, "{\"language\":\"python\",\"code\":\"import os\"}");
            assertEquals(200, refused.status(), refused.body());
            assertEquals("POLICY_VIOLATION", refused.json().path("verdict").asText(), refused.body());
            assertEquals("Potentially unsafe code detected: import os", refused.json().path("message").asText());

            // retries 2 from the sandbox: a failing run is tried twice, both attempts listed
            TestNode.Reply failing = b.post(runs, TestNode.ALICE, "{\"language\":\"python\",\"code\":\"raise SystemExit(3)\"}");
            assertEquals("RUNTIME_ERROR", failing.json().path("verdict").asText(), failing.body());
            assertEquals(2, failing.json().path("attempts").size(), failing.body());

            // the run's own policy replaces the sandbox's
            TestNode.Reply own = b.post(runs, TestNode.ALICE,
                    "{\"language\":\"python\",\"code\":\"import os\\nprint('ran')\",\"policy\":[\"rm -rf\"]}");
            assertEquals("OK", own.json().path("verdict").asText(), own.body());
            assertEquals("ran\n", own.json().path("stdout").asText());

            io.agentexec.gateway.grpc.v1.ExecutionResult viaGrpc = Await.result(grpcExecutionsOnB.execute()
                    .addHeader("authorization", "Bearer " + TestNode.ALICE)
                    .invoke(io.agentexec.gateway.grpc.v1.ExecuteRequest.newBuilder().setLanguage("python")
                            .setCode("import subprocess").setSandboxId(sandbox).build()));
            assertEquals("POLICY_VIOLATION", viaGrpc.getVerdict());

            // an async run cannot be answered once all its attempts are done: refused, and it says why
            TestNode.Reply async = b.post(runs + "?async=true", TestNode.ALICE, "{\"language\":\"python\",\"code\":\"1\"}");
            assertEquals(400, async.status(), async.body());
            assertTrue(async.body().contains("sandbox's defaults"), async.body());

            // another tenant sees no such sandbox, and its runs there take no one's defaults
            assertEquals(404, b.get("/v1/sandboxes/" + sandbox, TestNode.BOB).status());
        } finally {
            a.delete("/v1/sandboxes/" + sandbox, TestNode.ALICE);
        }

        io.agentexec.gateway.grpc.v1.Sandbox viaGrpc = Await.result(grpcSandboxesOnB.createSandbox()
                .addHeader("authorization", "Bearer " + TestNode.ALICE)
                .invoke(CreateSandboxRequest.newBuilder().setLanguage("python").addPolicyPatterns("forbidden-word")
                        .setRetries(1).build()));
        try {
            assertEquals(List.of("forbidden-word"), viaGrpc.getDefaults().getPolicyPatternsList());
            TestNode.Reply refused = a.post("/v1/sandboxes/" + viaGrpc.getSandboxId() + "/executions", TestNode.ALICE,
                    "{\"language\":\"python\",\"code\":\"print('forbidden-word')\"}");
            assertEquals("POLICY_VIOLATION", refused.json().path("verdict").asText(), refused.body());
            assertEquals("Potentially unsafe code detected: forbidden-word", refused.json().path("message").asText());
        } finally {
            b.delete("/v1/sandboxes/" + viaGrpc.getSandboxId(), TestNode.ALICE);
        }
    }

    /**
     * A burst of async runs against a cluster that holds four: each one answered 202 reads the same on
     * both nodes, whatever became of it (a run refused as overloaded after its 202 too); the others are 503.
     */
    @Test
    @Order(3)
    void everyAcceptedAsyncRunReadsTheSameOnBothNodesUnderOverload() throws Exception {
        String sleeper = "{\"language\":\"bash\",\"code\":\"sleep 30\",\"limits\":{\"timeoutSeconds\":60}}";
        // a sandbox bound to a worker (by a first run) before the workers fill up
        TestNode.Reply created = a.post("/v1/sandboxes", TestNode.ALICE, "{\"language\":\"bash\"}");
        assertEquals(201, created.status(), created.body());
        String sandbox = created.json().get("id").asText();
        assertEquals(200, a.post("/v1/sandboxes/" + sandbox + "/executions", TestNode.ALICE,
                "{\"language\":\"bash\",\"code\":\"true\"}").status());
        java.util.concurrent.ExecutorService pool = java.util.concurrent.Executors.newFixedThreadPool(12);
        List<String> ids = new ArrayList<>();
        int refused = 0;
        try {
            List<java.util.concurrent.Future<TestNode.Reply>> replies = new ArrayList<>();
            for (int i = 0; i < 12; i++) {
                TestNode node = i % 2 == 0 ? a : b;
                replies.add(pool.submit(() -> node.post("/v1/executions?async=true", TestNode.ALICE, sleeper)));
            }
            for (java.util.concurrent.Future<TestNode.Reply> f : replies) {
                TestNode.Reply r = f.get(WAIT.toSeconds(), TimeUnit.SECONDS);
                if (r.status() == 202) {
                    ids.add(r.json().get("id").asText());
                } else {
                    assertEquals(503, r.status(), r.body());
                    assertEquals("overloaded", r.errorCode(), r.body());
                    refused++;
                }
            }
        } finally {
            pool.shutdown();
        }
        assertTrue(refused > 0, "12 runs for room for " + 2 * (WORKER_SLOTS + WORKER_QUEUE) + ": some are refused");
        // the workers are full: runs sent at once into the sandbox wait behind each other (answered 202),
        // then each is refused by the sandbox's worker; that end must be every node's
        int sandboxRunsAnswered202 = 0;
        java.util.concurrent.ExecutorService senders = java.util.concurrent.Executors.newFixedThreadPool(6);
        try {
            List<java.util.concurrent.Future<TestNode.Reply>> replies = new ArrayList<>();
            for (int i = 0; i < 6; i++) {
                TestNode node = i % 2 == 0 ? a : b;
                replies.add(senders.submit(() -> node.post("/v1/sandboxes/" + sandbox + "/executions?async=true",
                        TestNode.ALICE, "{\"language\":\"bash\",\"code\":\"echo never\"}")));
            }
            for (java.util.concurrent.Future<TestNode.Reply> f : replies) {
                TestNode.Reply r = f.get(WAIT.toSeconds(), TimeUnit.SECONDS);
                if (r.status() == 202) {
                    ids.add(r.json().get("id").asText());
                    sandboxRunsAnswered202++;
                } else {
                    assertEquals(503, r.status(), r.body());
                    assertEquals("overloaded", r.errorCode(), r.body());
                }
            }
        } finally {
            senders.shutdown();
        }
        System.out.println("runs into a sandbox on a full worker answered 202 before their refusal: " + sandboxRunsAnswered202 + " of 6");
        // every accepted one ends (cancelled, or refused after its 202) and both nodes say the same of it
        for (String id : ids) {
            b.delete("/v1/executions/" + id, TestNode.ALICE);
        }
        for (String id : ids) {
            String url = "/v1/executions/" + id;
            JsonNode onA = awaitEnded(a, url, TestNode.ALICE);
            TestNode.Reply onB = b.get(url, TestNode.ALICE);
            assertEquals(200, onB.status(), id + " is " + onA + " on A but " + onB.status() + " " + onB.body() + " on B");
            assertEquals(onA.path("status").asText(), onB.json().path("status").asText(), onA + " vs " + onB.body());
            assertEquals(onA.path("error").path("code").asText(), onB.json().path("error").path("code").asText());
        }
        a.delete("/v1/sandboxes/" + sandbox, TestNode.ALICE);
    }

    @Test
    @Order(3)
    void theLiveSandboxQuotaCountsBothNodesAndADeleteOnEitherFreesTheSlot() throws Exception {
        // carol may hold one live sandbox
        String first = createdSandbox(a);
        TestNode.Reply refused = b.post("/v1/sandboxes", TestNode.CAROL, "{\"language\":\"bash\"}");
        assertEquals(429, refused.status(), refused.body());
        assertEquals("sandbox_quota", refused.errorCode());
        assertNotNull(refused.header("Retry-After"));
        ExecutionException exhausted = assertThrows(ExecutionException.class, () -> Await.result(grpcSandboxesOnB.createSandbox()
                .addHeader("authorization", "Bearer " + TestNode.CAROL)
                .invoke(CreateSandboxRequest.newBuilder().setLanguage("bash").build())));
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, ((StatusRuntimeException) exhausted.getCause()).getStatus().getCode());

        assertEquals(200, b.delete("/v1/sandboxes/" + first, TestNode.CAROL).status(), "deleted on the other node");
        String second = createdSandbox(b);
        assertEquals(429, a.post("/v1/sandboxes", TestNode.CAROL, "{\"language\":\"bash\"}").status());
        assertEquals(200, a.delete("/v1/sandboxes/" + second, TestNode.CAROL).status());
        String third = createdSandbox(a);
        assertEquals(200, a.delete("/v1/sandboxes/" + third, TestNode.CAROL).status());
    }

    @Test
    @Order(4)
    void theRequestRateHoldsAcrossBothNodes() {
        // dave: a burst of 2 and next to no refill, shared by the two nodes: one request each, then 429
        List<TestNode.Reply> replies = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            replies.add(a.get("/v1/languages", TestNode.DAVE));
            replies.add(b.get("/v1/languages", TestNode.DAVE));
        }
        long admitted = replies.stream().filter(r -> r.status() == 200).count();
        assertEquals(2, admitted, "the cluster admits the tenant's burst, not a burst per node");
        for (TestNode.Reply r : replies) {
            if (r.status() != 200) {
                assertEquals(429, r.status(), r.body());
                assertEquals("rate_limited", r.errorCode());
                assertTrue(Integer.parseInt(r.header("Retry-After")) >= 1);
            }
        }
        assertEquals(200, a.get("/v1/languages", TestNode.ALICE).status(), "other tenants are not limited");
    }

    /**
     * Each node exports its own worker's scaling signals only (slots, running, queued), labelled by its stable node
     * name: summed over every node's scrape each worker counts once (every node used to export every worker's
     * gauges, labelled by a per-start actor name). They are the operator's: the API port shows them to nobody.
     */
    @Test
    @Order(4)
    void eachNodeExportsOnlyItsOwnWorkersGaugesByNodeName() {
        int slotsSeen = 0;
        for (Map.Entry<String, TestNode> node : Map.of("node-a", a, "node-b", b).entrySet()) {
            List<String> gauges = node.getValue().metrics().body().lines()
                    .filter(l -> l.startsWith("agentexec_worker_")).toList();
            String label = "{node=\"" + node.getKey() + "\"} ";
            assertEquals(List.of("agentexec_worker_slots", "agentexec_worker_running", "agentexec_worker_queued"),
                    gauges.stream().map(l -> l.substring(0, l.indexOf('{'))).toList(), gauges.toString());
            assertTrue(gauges.stream().allMatch(l -> l.contains(label)), "only this node's worker, by its name: " + gauges);
            slotsSeen += gauges.stream().filter(l -> l.startsWith("agentexec_worker_slots{"))
                    .mapToInt(l -> Integer.parseInt(l.substring(l.lastIndexOf(' ') + 1))).sum();
            for (String key : java.util.Arrays.asList(null, TestNode.ALICE)) {
                TestNode.Reply api = node.getValue().get("/metrics", key);
                assertEquals(401, api.status(), api.body());
                assertTrue(!api.body().contains("node-a") && !api.body().contains("node-b"), api.body());
            }
        }
        assertEquals(2 * WORKER_SLOTS, slotsSeen, "two workers, each counted once over both scrapes");
    }

    /**
     * Keys are the cluster's, in its database: a tenant made there (what {@code agentexec tenant create} does) is let
     * in by both nodes, a rotated key and then a revoked tenant are refused by both within the refresh interval
     * (2 s by default; the wait here is a bound for a loaded machine, not a measure). Each node used to read its own
     * keys file, so a key made for one node was unknown to the other.
     */
    @Test
    @Order(4)
    void aKeyMadeInTheDatabaseWorksOnBothNodesAndItsRevocationReachesBoth() throws Exception {
        var store = new io.agentexec.gateway.tenant.TenantStore(new io.agentexec.cluster.ClusterSettings.PersistenceSettings(
                io.agentexec.cluster.persistence.Dialect.POSTGRESQL, PG_URL, PG_USER, PG_PASSWORD, schema, 2));
        var erin = new io.agentexec.gateway.spi.TenantId("erin");
        String key = store.create(erin, io.agentexec.gateway.tenant.TenantStore.Quotas.DEFAULTS, System.currentTimeMillis());
        Await.until("both nodes let the new key in", () -> a.get("/v1/languages", key).status() == 200
                && b.get("/v1/languages", key).status() == 200);
        String rotated = store.rotate(erin, System.currentTimeMillis());
        Await.until("both nodes refuse the rotated-out key and take the new one", () ->
                a.get("/v1/languages", key).status() == 401 && b.get("/v1/languages", key).status() == 401
                        && a.get("/v1/languages", rotated).status() == 200 && b.get("/v1/languages", rotated).status() == 200);
        store.revoke(erin, System.currentTimeMillis());
        Await.until("both nodes refuse the revoked tenant's key", () ->
                a.get("/v1/languages", rotated).status() == 401 && b.get("/v1/languages", rotated).status() == 401);
        assertEquals(200, a.get("/v1/languages", TestNode.ALICE).status(), "other tenants are untouched");
        // only hashes are stored
        try (var connection = DriverManager.getConnection(PG_URL, PG_USER, PG_PASSWORD);
             var statement = connection.createStatement();
             var rows = statement.executeQuery("SELECT key_sha256 FROM " + schema + ".agentexec_api_keys")) {
            while (rows.next()) {
                String stored = rows.getString(1).trim();
                assertTrue(!stored.equals(key) && !stored.equals(rotated) && stored.matches("[0-9a-f]{64}"), stored);
            }
        }
    }

    @Test
    @Order(5)
    void resultsAndQuotaSlotsOutliveTheNodeThatAcceptedThem() throws Exception {
        String held = createdSandbox(a);
        TestNode.Reply accepted = a.post("/v1/executions?async=true", TestNode.ALICE,
                "{\"language\":\"python\",\"code\":\"import time\\ntime.sleep(2)\\nprint('outlives A')\"}");
        assertEquals(202, accepted.status(), accepted.body());
        String url = "/v1/executions/" + accepted.json().get("id").asText();
        TestNode.Reply alicesSandbox = a.post("/v1/sandboxes", TestNode.ALICE, "{\"language\":\"bash\"}");
        assertEquals(201, alicesSandbox.status(), alicesSandbox.body());
        TestNode.Reply inSandbox = a.post("/v1/sandboxes/" + alicesSandbox.json().get("id").asText() + "/executions?async=true",
                TestNode.ALICE, "{\"language\":\"bash\",\"code\":\"sleep 1; echo sandbox outlives A\"}");
        assertEquals(202, inSandbox.status(), inSandbox.body());
        String sandboxRunUrl = "/v1/executions/" + inSandbox.json().get("id").asText();

        a.close(); // leaves the cluster once its run in flight has ended; its memory is gone with it
        Await.until("B counts itself alone", () -> b.gateway.gatewayNodes() == 1);

        JsonNode read = awaitEnded(b, url, TestNode.ALICE);
        assertEquals("completed", read.path("status").asText(), read.toString());
        assertEquals("outlives A\n", read.path("result").path("stdout").asText(), read.toString());
        assertEquals(404, b.get(url, TestNode.BOB).status());
        JsonNode sandboxRun = awaitEnded(b, sandboxRunUrl, TestNode.ALICE);
        assertEquals("completed", sandboxRun.path("status").asText(), sandboxRun.toString());
        assertEquals("sandbox outlives A\n", sandboxRun.path("result").path("stdout").asText(), sandboxRun.toString());
        assertEquals(404, b.get(sandboxRunUrl, TestNode.BOB).status());

        // carol's slot was taken through A: the journal still holds it
        assertEquals(429, b.post("/v1/sandboxes", TestNode.CAROL, "{\"language\":\"bash\"}").status());
        assertEquals(200, b.delete("/v1/sandboxes/" + held, TestNode.CAROL).status());
        String next = createdSandbox(b);
        assertEquals(200, b.delete("/v1/sandboxes/" + next, TestNode.CAROL).status());
    }

    // ---- helpers

    private static String createdSandbox(TestNode node) {
        TestNode.Reply created = node.post("/v1/sandboxes", TestNode.CAROL, "{\"language\":\"bash\"}");
        assertEquals(201, created.status(), created.body());
        return created.json().get("id").asText();
    }

    /** Reads the execution until it is no longer running (a node being handed shards may answer 503 meanwhile). */
    private static JsonNode awaitEnded(TestNode node, String url, String key) throws InterruptedException {
        Instant deadline = Instant.now().plus(WAIT);
        TestNode.Reply last = node.get(url, key);
        while (Instant.now().isBefore(deadline)) {
            if (last.status() == 200 && !last.json().path("status").asText().equals("running")) {
                return last.json();
            }
            assertTrue(last.status() == 200 || last.status() == 503, last.status() + ": " + last.body());
            Thread.sleep(200);
            last = node.get(url, key);
        }
        throw new AssertionError("still running or unanswered: " + last.status() + " " + last.body());
    }

    private static BufferedReader events(TestNode node, String url, String key) throws Exception {
        HttpResponse<InputStream> response = node.http.send(HttpRequest.newBuilder(URI.create(node.base + url + "/events"))
                .header("Authorization", "Bearer " + key).build(), HttpResponse.BodyHandlers.ofInputStream());
        assertEquals(200, response.statusCode());
        return new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8));
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
