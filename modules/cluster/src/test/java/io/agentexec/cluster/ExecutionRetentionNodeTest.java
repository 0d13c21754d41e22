package io.agentexec.cluster;

import static io.agentexec.cluster.TestNodes.await;
import static io.agentexec.cluster.TestNodes.completed;
import static io.agentexec.cluster.TestNodes.python;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.execution.ExecutionEntity;
import io.agentexec.cluster.persistence.ExecutionRetention;
import io.agentexec.sandbox.model.Limits;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A one-off run by a real node (H2 file journal, real Docker) leaves the records the retention knows how to find, and
 * once they are deleted its id is unknown: a lookup finds nothing and a request with the same id runs anew.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ExecutionRetentionNodeTest {
    private Path data;
    private AgentexecCluster node;
    private Limits limits;

    @BeforeAll
    void start() throws Exception {
        data = Files.createTempDirectory("agentexec-retention");
        node = TestNodes.start(TestNodes.common(TestNodes.freePort(), List.of(), "gateway,worker")
                + TestNodes.h2(data)
                // passivates soon after its end, so that the next look at the id reads the journal
                + "agentexec.cluster.execution.linger = 300ms\n");
        limits = node.engine().orElseThrow().defaultLimits().withTimeout(Duration.ofSeconds(20));
        TestNodes.awaitWorkers(node, 1);
    }

    @AfterAll
    void stop() {
        if (node != null) {
            node.close();
        }
    }

    @Test
    void aNodeAloneLeadsTheDeletion() {
        TestNodes.eventually("the node leads once it is up", () -> AgentexecCluster.leadsHousekeeping(node.system()));
    }

    @Test
    void aOneOffPastItsRetentionIsUnknownAndItsIdRunsAnew() throws Exception {
        String key = "t:" + UUID.randomUUID();
        ExecutionOutcome.Completed first = completed(await(node.execute(Optional.empty(),
                python("import random\nprint(random.random())", limits), key)));
        String persistenceId = ExecutionEntity.TYPE_KEY.name() + "|" + key;
        assertTrue(manifests(persistenceId).contains(ExecutionEntity.Finished.class.getName()),
                "the journal names the Finished event as the retention looks for it: " + manifests(persistenceId));
        // a repeat within the retention answers the first outcome
        ExecutionOutcome repeat = await(node.execute(Optional.empty(), python("print('never runs')", limits), key));
        assertTrue(repeat.replayed());

        ExecutionRetention retention = new ExecutionRetention(node.settings().persistence(), Duration.ofDays(7), 10_000,
                ExecutionEntity.TYPE_KEY.name(), ExecutionEntity.Finished.class.getName(),
                Clock.fixed(Instant.now().plus(Duration.ofDays(8)), ZoneOffset.UTC), () -> true);
        try (retention) {
            assertTrue(retention.round().deletedExecutions() >= 1);
        }
        assertEquals(List.of(), manifests(persistenceId));

        TestNodes.eventually("the id is unknown once its entity passivated", () -> {
            ExecutionEntity.ExecutionView view = await(node.execution(key));
            return !view.accepted() && view.outcome().isEmpty();
        });
        ExecutionOutcome.Completed again = completed(await(node.execute(Optional.empty(),
                python("import random\nprint(random.random())", limits), key)));
        assertFalse(again.replayed(), "a request with the id runs anew");
        assertFalse(again.result().stdout().equals(first.result().stdout()), "it ran again: another random number");
    }

    private List<String> manifests(String persistenceId) throws Exception {
        var db = node.settings().persistence();
        List<String> manifests = new ArrayList<>();
        try (Connection c = DriverManager.getConnection(db.journalUrl(), db.user(), db.password());
             PreparedStatement select = c.prepareStatement(
                     "SELECT event_ser_manifest FROM event_journal WHERE persistence_id = ? ORDER BY sequence_number")) {
            select.setString(1, persistenceId);
            try (ResultSet rows = select.executeQuery()) {
                while (rows.next()) {
                    manifests.add(rows.getString(1));
                }
            }
        }
        return manifests;
    }
}
