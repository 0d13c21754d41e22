package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The cluster-wide live-sandbox quota gives back the slot of a sandbox the cluster reaped (expired
 * idle, its container removed) although nobody deleted it: a single-node cluster (H2 in memory,
 * real Docker) whose sandboxes expire after a few idle seconds.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SandboxQuotaReapTest {
    private TestNode node;

    @BeforeAll
    void start() throws Exception {
        node = TestNode.start("cluster", Map.of(
                "agentexec.cluster.persistence.url", "jdbc:h2:mem:gateway-quota-reap-test;DB_CLOSE_DELAY=-1;DATABASE_TO_UPPER=false",
                "pekko.remote.artery.canonical.port", 0,
                "agentexec.cluster.sandbox.idle-timeout", "2s"));
        assertTrue(DockerProbe.eventually(() -> node.get("/readyz", null).status() == 200), "the node gets ready");
    }

    @AfterAll
    void stop() {
        if (node != null) {
            node.close();
        }
    }

    @Test
    void anExpiredSandboxFreesItsSlot() throws Exception {
        // carol may hold one live sandbox
        TestNode.Reply first = node.post("/v1/sandboxes", TestNode.CAROL, "{\"language\":\"bash\"}");
        assertEquals(201, first.status(), first.body());
        String firstId = first.json().get("id").asText();
        assertTrue(DockerProbe.eventually(() -> node.get("/v1/sandboxes/" + firstId, TestNode.CAROL).json()
                .path("status").asText().equals("expired")), "the idle sandbox expires");

        TestNode.Reply second = node.post("/v1/sandboxes", TestNode.CAROL, "{\"language\":\"bash\"}");
        assertEquals(201, second.status(), "the reaped sandbox's slot is free: " + second.body());
        node.delete("/v1/sandboxes/" + second.json().get("id").asText(), TestNode.CAROL);
        node.delete("/v1/sandboxes/" + firstId, TestNode.CAROL);
    }
}
