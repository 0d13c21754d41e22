package io.agentexec.cluster;

import static io.agentexec.cluster.TestNodes.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.execution.ExecutionEntity;
import io.agentexec.cluster.sandbox.SandboxEntity;
import io.agentexec.sandbox.model.Verdict;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.DriverManager;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.junit.jupiter.api.Test;

/**
 * A journal written before {@code ExecutionOutcome} became {@link ExecutionOutcome} still reads. The rows in
 * {@code journal/before-execution-outcome.txt} are the event_journal of a real node of commit 2b92f3b (a
 * one-off, a sandbox with two runs, a refusal recorded, the sandbox closed), dumped as they were stored, plus
 * events of the outcomes a healthy run never journals (SandboxLost, a cancelled run with a lost workspace),
 * serialized by that code's Jackson CBOR serializer.
 */
class OldJournalCompatibilityTest {

    /** One stored event: its persistence id and sequence number ("synthetic" rows have neither), serializer, manifest, bytes. */
    record Row(String persistenceId, long sequenceNr, int serializerId, String manifest, byte[] payload) {
        boolean synthetic() {
            return persistenceId.equals("synthetic");
        }
    }

    static List<Row> rows() throws IOException {
        List<Row> rows = new ArrayList<>();
        try (InputStream in = OldJournalCompatibilityTest.class.getResourceAsStream("/journal/before-execution-outcome.txt")) {
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (line.isBlank() || line.startsWith("#")) {
                    continue;
                }
                String[] parts = line.split(" ");
                String id = parts[0];
                int hash = id.lastIndexOf('#');
                rows.add(new Row(hash < 0 ? id : id.substring(0, hash), hash < 0 ? 0 : Long.parseLong(id.substring(hash + 1)),
                        Integer.parseInt(parts[1]), parts[2], Base64.getDecoder().decode(parts[3])));
            }
        }
        return rows;
    }

    @Test
    void everyOldEventDeserialisesWithTheOutcomesInside() throws IOException {
        ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), "old-journal",
                TestNodes.config("pekko.actor.provider = local\npekko.loglevel = WARNING"));
        try {
            Serialization serialization = SerializationExtension.get(Adapter.toClassic(system));
            List<Object> events = new ArrayList<>();
            for (Row row : rows()) {
                events.add(serialization.deserialize(row.payload(), row.serializerId(), row.manifest()).get());
            }
            assertEquals(15, events.size());
            ExecutionOutcome.Completed oneOff = (ExecutionOutcome.Completed) ((ExecutionEntity.Finished) events.get(6)).reply();
            assertEquals("fixture-oneoff", oneOff.executionKey());
            assertEquals("one-off\n", oneOff.result().stdout());
            assertEquals(1, oneOff.attempts().size());
            ExecutionOutcome.SandboxLost lost = (ExecutionOutcome.SandboxLost) ((ExecutionEntity.Finished) events.get(0)).reply();
            assertEquals(2, lost.attempts().size());
            assertTrue(lost.mayHaveRunMoreThanOnce());
            assertInstanceOf(ExecutionOutcome.SandboxLost.class, ((SandboxEntity.ExecutionFinished) events.get(1)).reply());
            ExecutionOutcome.Completed cancelled = (ExecutionOutcome.Completed) ((SandboxEntity.ExecutionFinished) events.get(2)).reply();
            assertEquals(Verdict.CANCELLED, cancelled.result().verdict());
            assertEquals(Optional.of("the sandbox expired"), cancelled.workspaceLost());
            ExecutionOutcome.Completed exit3 = (ExecutionOutcome.Completed) ((SandboxEntity.ExecutionFinished) events.get(12)).reply();
            assertEquals(3, exit3.result().exitCode());
            assertEquals(new SandboxEntity.ExecutionRefused("fixture-refused", "every worker's slots and queue are full"),
                    events.get(13));
        } finally {
            system.terminate();
        }
    }

    /** A node of this version started on the old journal reads every entity back: outcomes, views, replays. */
    @Test
    void aNodeOnTheOldJournalReadsItsEntitiesBack() throws Exception {
        Path data = Files.createTempDirectory("agentexec-old-journal");
        // Gateway only: the entities live here and no worker (nor Docker) is needed to read them.
        AgentexecCluster node = TestNodes.start(TestNodes.common(TestNodes.freePort(), List.of(), "gateway")
                + TestNodes.h2(data));
        try {
            String url = "jdbc:h2:file:" + data.resolve("journal") + ";DATABASE_TO_UPPER=false";
            try (var connection = DriverManager.getConnection(url, "sa", "");
                 var insert = connection.prepareStatement("INSERT INTO \"event_journal\" (\"persistence_id\", "
                         + "\"sequence_number\", \"writer\", \"write_timestamp\", \"adapter_manifest\", \"event_payload\", "
                         + "\"event_ser_id\", \"event_ser_manifest\") VALUES (?, ?, 'old-node', 0, '', ?, ?, ?)")) {
                for (Row row : rows()) {
                    if (row.synthetic()) {
                        continue;
                    }
                    insert.setString(1, row.persistenceId());
                    insert.setLong(2, row.sequenceNr());
                    insert.setBytes(3, row.payload());
                    insert.setInt(4, row.serializerId());
                    insert.setString(5, row.manifest());
                    insert.executeUpdate();
                }
            }
            ExecutionEntity.ExecutionView oneOff = await(node.execution("fixture-oneoff"));
            assertTrue(oneOff.accepted());
            assertEquals("one-off\n", ((ExecutionOutcome.Completed) oneOff.outcome().orElseThrow()).result().stdout());
            ExecutionOutcome replayed = await(node.follow("fixture-oneoff", Duration.ofSeconds(20), chunk -> { }));
            assertTrue(replayed.replayed(), replayed.toString());
            assertEquals(oneOff.outcome().get().asReplayed(), replayed);

            SandboxView sandbox = await(node.sandbox("fixture-sbx"));
            assertEquals(SandboxView.Status.CLOSED, sandbox.status());
            assertEquals(2, sandbox.executions());
            ExecutionOutcome run = await(node.execution(Optional.of("fixture-sbx"), "fixture-run")).outcome().orElseThrow();
            assertEquals("in sandbox\n", ((ExecutionOutcome.Completed) run).result().stdout());
            assertEquals(3, ((ExecutionOutcome.Completed) await(node.execution(Optional.of("fixture-sbx"), "fixture-run-2"))
                    .outcome().orElseThrow()).result().exitCode());
            assertInstanceOf(ExecutionOutcome.Overloaded.class,
                    await(node.execution(Optional.of("fixture-sbx"), "fixture-refused")).outcome().orElseThrow());
        } finally {
            node.close();
        }
    }
}
