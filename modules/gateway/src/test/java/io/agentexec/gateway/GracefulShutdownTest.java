package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/** Stopping a node refuses new work at once and lets the work in flight finish. */
class GracefulShutdownTest {
    @Test
    void stopFinishesRunsInFlightAndRefusesNewOnes() throws Exception {
        stopFinishesARunInFlightAndRefusesNewOnes(Map.of());
    }

    /**
     * The run outlasts the heartbeat interval, so its answer is streamed (200 committed, spaces, then the result):
     * the drain waits for the answer's last bytes, not only for the run (a connection closed between the two cut the
     * body: "chunked transfer encoding, state: READING_LENGTH", connection reset, seen once on a loaded machine).
     */
    @Test
    void aStreamedAnswerInFlightIsWrittenWholeBeforeTheNodeStops() throws Exception {
        stopFinishesARunInFlightAndRefusesNewOnes(Map.of("agentexec.gateway.heartbeat-interval", "200ms"));
    }

    private static void stopFinishesARunInFlightAndRefusesNewOnes(Map<String, Object> overrides) throws Exception {
        TestNode node = TestNode.start("engine", overrides);
        CompletableFuture<TestNode.Reply> inFlight = CompletableFuture.supplyAsync(() -> node.post("/v1/executions",
                TestNode.ALICE, "{\"language\":\"python\",\"code\":\"import time\\ntime.sleep(2)\\nprint('finished')\"}"));
        // wait until the run is admitted (it shows up as running in the metrics)
        for (int i = 0; i < 100 && node.metrics().body().lines().noneMatch(l -> l.startsWith("agentexec_worker_running{node=") && l.endsWith("} 1")); i++) {
            Thread.sleep(50);
        }
        CompletableFuture<Void> stopping = CompletableFuture.runAsync(node::close);
        for (int i = 0; i < 100 && !node.gateway.draining(); i++) {
            Thread.sleep(10);
        }
        assertTrue(node.gateway.draining());
        TestNode.Reply done = inFlight.get();
        assertEquals(200, done.status(), done.body());
        assertEquals("finished\n", done.json().get("stdout").asText());
        stopping.get();
        boolean refused;
        try {
            refused = node.post("/v1/executions", TestNode.ALICE, "{\"language\":\"python\",\"code\":\"print(1)\"}").status() == 503;
        } catch (java.io.UncheckedIOException connectionRefused) {
            refused = true;
        }
        assertTrue(refused, "a stopped node takes no new work");
    }
}
