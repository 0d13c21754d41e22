package io.agentexec.cluster;

import static io.agentexec.cluster.TestNodes.await;
import static io.agentexec.cluster.TestNodes.completed;
import static io.agentexec.cluster.TestNodes.python;
import static io.agentexec.cluster.TestNodes.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/** Three nodes (three ActorSystems on 127.0.0.1), journal in the local PostgreSQL, real Docker. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class MultiNodeClusterTest {
    private final String schema = TestNodes.newSchema();
    private final List<AgentexecCluster> nodes = new ArrayList<>();
    private Limits limits;

    @BeforeAll
    void start() {
        startCluster();
        limits = nodes.get(0).engine().orElseThrow().defaultLimits().withTimeout(Duration.ofSeconds(30));
    }

    private void startCluster() {
        List<Integer> ports = List.of(TestNodes.freePort(), TestNodes.freePort(), TestNodes.freePort());
        for (int port : ports) {
            nodes.add(TestNodes.start(TestNodes.common(port, ports.subList(0, 1), "gateway,worker")
                    + TestNodes.postgres(schema)
                    + "agentexec.cluster.worker { slots = 2, queue = 8 }\n"));
        }
        nodes.forEach(n -> TestNodes.awaitWorkers(n, 3));
    }

    private void stopCluster() {
        nodes.forEach(AgentexecCluster::close);
        nodes.clear();
    }

    @AfterAll
    void stop() throws Exception {
        stopCluster();
        TestNodes.dropSchema(schema);
    }

    @Test
    @Order(0)
    void exactlyOneNodeLeadsTheDeletionOfOldOneOffRecords() {
        TestNodes.eventually("one of the three gateways leads", () ->
                nodes.stream().filter(n -> AgentexecCluster.leadsHousekeeping(n.system())).count() == 1);
    }

    @Test
    @Order(1)
    void executionsSpreadOverTheWorkersOfAllNodes() {
        List<CompletableFuture<ExecutionOutcome>> replies = new ArrayList<>();
        for (int i = 0; i < 18; i++) {
            AgentexecCluster entry = nodes.get(i % nodes.size()); // requests enter on every node
            replies.add(entry.execute(Optional.empty(), python("import time; time.sleep(1); print('ok')", limits),
                    "spread-" + UUID.randomUUID()).toCompletableFuture());
        }
        Set<String> workers = new HashSet<>();
        for (CompletableFuture<ExecutionOutcome> reply : replies) {
            ExecutionOutcome.Completed done = completed(await(reply));
            assertEquals(Verdict.OK, done.result().verdict());
            done.attempts().stream().map(Attempt::worker).forEach(workers::add);
        }
        assertEquals(3, workers.size(), "all three workers ran executions: " + workers);
    }

    @Test
    @Order(2)
    void everySandboxStateComesBackFromPostgresAfterTheWholeClusterRestarts() {
        Map<String, SandboxView> before = new HashMap<>();
        for (int i = 0; i < 4; i++) {
            AgentexecCluster entry = nodes.get(i % nodes.size());
            String id = await(entry.createSandbox("python", limits)).sandboxId();
            for (int j = 0; j <= i; j++) {
                completed(run(entry, Optional.of(id), "open('f.txt', 'a').write('x')", limits));
            }
            before.put(id, await(entry.sandbox(id)));
        }
        String closedId = await(nodes.get(0).createSandbox("bash", limits)).sandboxId();
        before.put(closedId, await(nodes.get(0).closeSandbox(closedId)));
        String oneOffKey = "restart-" + UUID.randomUUID();
        ExecutionOutcome.Completed oneOff = completed(await(nodes.get(1).execute(Optional.empty(),
                python("import uuid; print(uuid.uuid4())", limits), oneOffKey)));

        stopCluster();
        startCluster();

        for (Map.Entry<String, SandboxView> entry : before.entrySet()) {
            SandboxView after = await(nodes.get(2).sandbox(entry.getKey()));
            assertEquals(entry.getValue(), after, "state of " + entry.getKey() + " after the restart");
        }
        ExecutionOutcome replayed = await(nodes.get(0).execute(Optional.empty(),
                python("import uuid; print(uuid.uuid4())", limits), oneOffKey));
        assertTrue(replayed.replayed());
        assertEquals(oneOff.result().stdout(), completed(replayed).result().stdout());

        // The containers died with the old workers: the next run opens a fresh one and says so.
        String sandbox = before.keySet().stream().filter(id -> !id.equals(closedId)).findFirst().orElseThrow();
        ExecutionOutcome.Completed next = completed(run(nodes.get(1), Optional.of(sandbox),
                "import os; print(os.path.exists('f.txt'))", limits));
        assertEquals("False\n", next.result().stdout());
        assertTrue(next.workspaceLost().isPresent(), "the reply says the workspace was lost");
        assertEquals(SandboxView.Status.CLOSED, await(nodes.get(1).sandbox(closedId)).status());
        assertTrue(run(nodes.get(1), Optional.of(closedId), "print(1)", limits) instanceof ExecutionOutcome.Rejected);
    }
}
