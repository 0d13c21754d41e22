package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The default backend: a single-node agentexec cluster (H2 in memory), reached through the gateway. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ClusterBackendTest {
    private TestNode node;

    @BeforeAll
    void start() throws Exception {
        node = TestNode.start("cluster", Map.of(
                "agentexec.cluster.persistence.url", "jdbc:h2:mem:gateway-cluster-test;DB_CLOSE_DELAY=-1;DATABASE_TO_UPPER=false",
                "pekko.remote.artery.canonical.port", 0));
        // the single node must join itself and see its worker before it takes work
        for (int i = 0; i < 200 && node.get("/readyz", null).status() != 200; i++) {
            Thread.sleep(100);
        }
    }

    @AfterAll
    void stop() {
        if (node != null) {
            node.close();
        }
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
        TestNode.Reply created = node.post("/v1/sandboxes", TestNode.ALICE, "{\"language\":\"bash\"}");
        assertEquals(201, created.status(), created.body());
        String sid = created.json().get("id").asText();
        String files = "/v1/sandboxes/" + sid + "/files/";
        assertEquals(200, node.send("PUT", files + "n.txt", TestNode.ALICE, "application/octet-stream",
                "7".getBytes(java.nio.charset.StandardCharsets.UTF_8)).status());
        TestNode.Reply run = node.post("/v1/sandboxes/" + sid + "/executions", TestNode.ALICE,
                "{\"language\":\"bash\",\"code\":\"cat n.txt\"}");
        assertEquals(200, run.status(), run.body());
        assertEquals("7", run.json().get("stdout").asText());
        assertEquals(404, node.post("/v1/sandboxes/" + sid + "/executions", TestNode.BOB,
                "{\"language\":\"bash\",\"code\":\"true\"}").status());
        assertEquals(404, node.get("/v1/sandboxes/" + sid, TestNode.BOB).status());
        TestNode.Reply read = node.get(files + "n.txt", TestNode.ALICE);
        assertEquals(501, read.status(), "reading files needs a cluster operation (reported)");
        assertEquals(200, node.delete("/v1/sandboxes/" + sid, TestNode.ALICE).status());
        assertEquals(404, node.get("/v1/sandboxes/" + sid, TestNode.ALICE).status());
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
        assertEquals("late\n", read.json().path("result").path("stdout").asText(), read.body());
        assertEquals(404, node.get(url, TestNode.BOB).status());
    }

    @Test
    void metricsShowTheWorkersQueue() {
        String metrics = node.get("/metrics", null).body();
        assertTrue(metrics.contains("agentexec_worker_queue_depth{worker="), metrics);
        assertTrue(metrics.contains("agentexec_ready 1"), metrics);
    }
}
