package io.agentexec.cluster.persistence;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import io.agentexec.cluster.ClusterSettings.PersistenceSettings;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A finished one-off's journal records go once its retention is over, all of them and nothing else: not an execution
 * still in progress however old, not one with a recent event, not another entity's events; only on the node that
 * leads; a round walks a bounded number of rows and the next goes on from there. On H2 and on PostgreSQL, with the
 * journal's real schema (rows written here as the journal writes them).
 */
class ExecutionRetentionTest {
    private static final String PG_URL = "jdbc:postgresql://127.0.0.1:5432/agentexec";
    private static final String FINISHED = "io.agentexec.cluster.execution.ExecutionEntity$Finished";
    private static final Duration KEEP = Duration.ofDays(7);
    private static final Instant NOW = Instant.parse("2026-12-02T12:00:00Z");

    @TempDir
    Path dir;

    private final List<String> schemas = new ArrayList<>();

    @AfterEach
    void dropSchemas() throws Exception {
        for (String schema : schemas) {
            try (Connection c = DriverManager.getConnection(PG_URL, "agentexec", "agentexec");
                 Statement s = c.createStatement()) {
                s.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Dialect.class)
    void aFinishedOneOffPastItsRetentionLosesAllItsEventsAndNothingElseIsTouched(Dialect dialect) throws Exception {
        PersistenceSettings db = journal(dialect);
        Instant old = NOW.minus(Duration.ofDays(8));
        Instant recent = NOW.minus(Duration.ofHours(1));
        // in this order, so that the walk meets every old row before the first recent one
        oneOff(db, "Execution|t:old-done", old, true);
        oneOff(db, "Execution|t:old-running", old, false);
        oneOff(db, "Sandbox|t.sbx-1", old, true); // another entity's events, even with this manifest
        oneOff(db, "Execution|t:old-then-touched", old, true);
        event(db, "Execution|t:old-then-touched", 4, recent, "io.agentexec.cluster.execution.ExecutionEntity$Accepted");
        oneOff(db, "Execution|t:recent-done", recent, true);

        ExecutionRetention.Round round = retention(db, NOW, () -> true, 1000).round();

        assertEquals(0, rows(db, "Execution|t:old-done"), "every event of the old finished one-off is gone");
        assertEquals(3, rows(db, "Execution|t:recent-done"));
        assertEquals(2, rows(db, "Execution|t:old-running"), "an execution that has not finished is never deleted");
        assertEquals(3, rows(db, "Sandbox|t.sbx-1"));
        assertEquals(4, rows(db, "Execution|t:old-then-touched"), "an event within the retention keeps it");
        assertTrue(round.reachedRecentRows());

        // Eight days on, the recent ones are past their retention too; the unfinished one still stays.
        retention(db, NOW.plus(Duration.ofDays(8)), () -> true, 1000).round();
        assertEquals(0, rows(db, "Execution|t:recent-done"));
        assertEquals(0, rows(db, "Execution|t:old-then-touched"));
        assertEquals(2, rows(db, "Execution|t:old-running"));
        assertEquals(3, rows(db, "Sandbox|t.sbx-1"));
    }

    @Test
    void aNodeThatDoesNotLeadDeletesNothing() throws Exception {
        PersistenceSettings db = journal(Dialect.H2);
        oneOff(db, "Execution|t:old-done", NOW.minus(Duration.ofDays(8)), true);
        AtomicBoolean leads = new AtomicBoolean(false);
        ExecutionRetention retention = retention(db, NOW, leads::get, 1000);

        assertEquals(0, retention.round().deletedExecutions());
        assertEquals(3, rows(db, "Execution|t:old-done"));
        leads.set(true);
        assertEquals(1, retention.round().deletedExecutions());
        assertEquals(0, rows(db, "Execution|t:old-done"));
    }

    @ParameterizedTest
    @EnumSource(Dialect.class)
    void aRoundWalksAtMostItsRowsAndTheNextGoesOnFromThere(Dialect dialect) throws Exception {
        PersistenceSettings db = journal(dialect);
        for (int i = 0; i < 4; i++) {
            oneOff(db, "Execution|t:done-" + i, NOW.minus(Duration.ofDays(9)).plusSeconds(i), true);
        }
        ExecutionRetention retention = retention(db, NOW, () -> true, 4);

        ExecutionRetention.Round first = retention.round();
        assertEquals(4, first.scannedRows());
        assertFalse(first.reachedRecentRows());
        assertEquals(2, first.deletedExecutions(), "the executions whose rows it walked (all their rows go)");
        assertEquals(0, rows(db, "Execution|t:done-1"));
        assertEquals(3, rows(db, "Execution|t:done-2"));
        ExecutionRetention.Round second = retention.round();
        assertEquals(2, second.deletedExecutions());
        for (int i = 0; i < 4; i++) {
            assertEquals(0, rows(db, "Execution|t:done-" + i));
        }
        assertEquals(0, retention.round().scannedRows(), "nothing is left to walk");
    }

    @Test
    void theDefaultKeepsFinishedOneOffsSevenDaysAndOffKeepsThemForEver() {
        var defaults = ConfigFactory.defaultReference().getConfig("agentexec.cluster.execution.finished-retention");
        ExecutionRetention.Settings settings = ExecutionRetention.Settings.fromConfig(defaults);
        assertEquals(Optional.of(Duration.ofDays(7)), settings.keep());

        ExecutionRetention.Settings off = ExecutionRetention.Settings.fromConfig(
                ConfigFactory.parseString("keep = off").withFallback(defaults));
        assertEquals(Optional.empty(), off.keep());
        assertTrue(ExecutionRetention.start(journal(Dialect.H2), off, "Execution", FINISHED, () -> true).isEmpty());
    }

    @Test
    void settingsThatCannotWorkAreRefused() {
        assertThrows(IllegalArgumentException.class, () ->
                new ExecutionRetention.Settings(Optional.of(Duration.ZERO), Duration.ofMinutes(5), 1000));
        assertThrows(IllegalArgumentException.class, () ->
                new ExecutionRetention.Settings(Optional.of(KEEP), Duration.ZERO, 1000));
        assertThrows(IllegalArgumentException.class, () ->
                new ExecutionRetention.Settings(Optional.of(KEEP), Duration.ofMinutes(5), 0));
        var defaults = ConfigFactory.defaultReference().getConfig("agentexec.cluster.execution.finished-retention");
        assertThrows(RuntimeException.class, () -> ExecutionRetention.Settings.fromConfig(
                ConfigFactory.parseString("keep = soon").withFallback(defaults)));
    }

    // ---- a journal with the real schema, and rows as the journal writes them

    private PersistenceSettings journal(Dialect dialect) {
        PersistenceSettings db;
        if (dialect == Dialect.H2) {
            db = new PersistenceSettings(Dialect.H2, "jdbc:h2:file:" + dir.resolve("journal-" + UUID.randomUUID())
                    + ";DATABASE_TO_UPPER=false", "sa", "", "", 1);
        } else {
            String schema = "agentexec_test_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
            schemas.add(schema);
            db = new PersistenceSettings(Dialect.POSTGRESQL, PG_URL, "agentexec", "agentexec", schema, 1);
        }
        SchemaMigrations.migrate(db);
        return db;
    }

    private static ExecutionRetention retention(PersistenceSettings db, Instant now, java.util.function.BooleanSupplier leader,
                                                int maxScanRows) {
        return new ExecutionRetention(db, KEEP, maxScanRows, "Execution", FINISHED, Clock.fixed(now, ZoneOffset.UTC), leader);
    }

    /** A one-off's events: accepted and started at {@code at}, finished a second later if {@code finished}. */
    private static void oneOff(PersistenceSettings db, String id, Instant at, boolean finished) throws Exception {
        event(db, id, 1, at, "io.agentexec.cluster.execution.ExecutionEntity$Accepted");
        event(db, id, 2, at, "io.agentexec.cluster.execution.ExecutionEntity$AttemptStarted");
        if (finished) {
            event(db, id, 3, at.plusSeconds(1), FINISHED);
        }
    }

    private static void event(PersistenceSettings db, String id, long seq, Instant at, String manifest) throws Exception {
        try (Connection c = DriverManager.getConnection(db.journalUrl(), db.user(), db.password());
             PreparedStatement insert = c.prepareStatement("INSERT INTO event_journal (persistence_id, sequence_number, "
                     + "writer, write_timestamp, adapter_manifest, event_payload, event_ser_id, event_ser_manifest) "
                     + "VALUES (?, ?, 'test', ?, '', ?, 33, ?)")) {
            insert.setString(1, id);
            insert.setLong(2, seq);
            insert.setLong(3, at.toEpochMilli());
            insert.setBytes(4, new byte[]{1, 2, 3});
            insert.setString(5, manifest);
            insert.executeUpdate();
        }
    }

    private static int rows(PersistenceSettings db, String id) throws Exception {
        try (Connection c = DriverManager.getConnection(db.journalUrl(), db.user(), db.password());
             PreparedStatement count = c.prepareStatement("SELECT COUNT(*) FROM event_journal WHERE persistence_id = ?")) {
            count.setString(1, id);
            try (ResultSet r = count.executeQuery()) {
                r.next();
                return r.getInt(1);
            }
        }
    }
}
