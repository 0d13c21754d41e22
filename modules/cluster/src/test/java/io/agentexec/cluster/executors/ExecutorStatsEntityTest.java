package io.agentexec.cluster.executors;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.agentexec.cluster.dispatch.EntityFixture;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.apache.pekko.Done;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * A tenant's statistics: a node's gathered samples are one event, the most kept hold, and the one-event-per-run
 * journals of earlier versions still recover.
 */
class ExecutorStatsEntityTest {
    private static final ActorTestKit testKit = EntityFixture.testKit();

    @AfterAll
    static void stop() {
        testKit.shutdownTestKit();
    }

    private static StatsSample sample(String executor, boolean success) {
        return new StatsSample(executor, StatsSample.NO_PROFILE, success ? "OK" : "RUNTIME_ERROR", success, 10,
                256L << 20, 0.5, 30_000, false, 1, "http", Instant.parse("2026-12-01T00:00:00Z"));
    }

    private static EventSourcedBehaviorTestKit<ExecutorStatsEntity.Command, ExecutorStatsEntity.Event,
            ExecutorStatsEntity.State> entity(String id, int maxSamples) {
        return EventSourcedBehaviorTestKit.create(testKit.system(), ExecutorStatsEntity.create(id, maxSamples, 200),
                EntityFixture.serialization());
    }

    @Test
    void aNodesGatheredSamplesAreOneEventAndTheMostKeptHold() {
        var kit = entity(EntityFixture.key("tenant.stats"), 3);
        var first = kit.<Done>runCommand(r -> new ExecutorStatsEntity.RecordAll(
                List.of(sample("a", true), sample("a", false), sample("b", true)), r));
        assertEquals(1, first.events().size(), "three runs, one journal write");
        kit.<Done>runCommand(r -> new ExecutorStatsEntity.RecordAll(List.of(sample("c", true), sample("c", true)), r));
        assertEquals(List.of("b", "c", "c"), kit.getState().samples().stream().map(StatsSample::executor).toList(),
                "the oldest dropped beyond the 3 kept");
        StatsReport report = kit.<StatsReport>runCommand(r -> new ExecutorStatsEntity.Get(Optional.empty(), r)).reply();
        assertEquals(3, report.samples());
        kit.restart();
        assertEquals(3, kit.getState().samples().size(), "recovered from the journal");
    }

    @Test
    void aJournalOfOneEventPerRunStillRecovers() {
        var kit = entity(EntityFixture.key("tenant.stats"), 10);
        kit.initialize(new ExecutorStatsEntity.Recorded(sample("old", true)),
                new ExecutorStatsEntity.Recorded(sample("old", false)));
        assertEquals(2, kit.getState().samples().size());
        kit.<Done>runCommand(r -> new ExecutorStatsEntity.Record(sample("new", true), r));
        assertEquals(3, kit.getState().samples().size());
    }
}
