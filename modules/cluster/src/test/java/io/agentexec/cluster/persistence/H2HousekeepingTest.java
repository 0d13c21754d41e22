package io.agentexec.cluster.persistence;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.ClusterSettings.PersistenceSettings;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.Optional;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An embedded H2 file journal written one commit at a time, as the journal is at {@code WRITE_DELAY=0}, keeps a size in
 * proportion to its data with the housekeeping and grows with every commit without it; only a file this JVM opens is
 * kept; settings that would let a chunk be reused before an fsync covered it are refused.
 */
class H2HousekeepingTest {
    private static final int EXECUTIONS = 3_000;
    private static final H2Housekeeping.Settings QUICK = new H2Housekeeping.Settings(true, Duration.ofMillis(50),
            Duration.ofMillis(100), 80, 2 * 1024 * 1024);

    @TempDir
    Path dir;

    @Test
    void aJournalWrittenOneCommitAtATimeStaysAFractionOfWhatItGrowsToWithoutHousekeeping() throws Exception {
        long without = write(dir.resolve("without"), Optional.empty());
        long with = write(dir.resolve("with"), Optional.of(QUICK));
        // Without it every commit leaves a chunk that H2 never rewrites (~35 KB each: 100 MB and more here).
        assertTrue(with * 3 < without, "with housekeeping " + with + " bytes, without " + without);
    }

    /** Writes {@link #EXECUTIONS} executions' two events, each its own commit, and returns the file's size after. */
    private static long write(Path base, Optional<H2Housekeeping.Settings> housekeeping) throws Exception {
        PersistenceSettings persistence = new PersistenceSettings(Dialect.H2, "jdbc:h2:file:" + base
                + ";DATABASE_TO_UPPER=false;WRITE_DELAY=0", "sa", "", "", 1);
        try (Connection c = DriverManager.getConnection(persistence.url(), persistence.user(), persistence.password())) {
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE journal (ordering BIGINT UNIQUE NOT NULL AUTO_INCREMENT, id VARCHAR(255) NOT NULL,"
                        + " seq BIGINT NOT NULL, payload VARBINARY NOT NULL, PRIMARY KEY (id, seq))");
            }
            Optional<H2Housekeeping> keeper = housekeeping.flatMap(h -> H2Housekeeping.startIfEmbeddedFile(persistence, h));
            assertEquals(housekeeping.isPresent(), keeper.isPresent());
            try (PreparedStatement insert = c.prepareStatement("INSERT INTO journal (id, seq, payload) VALUES (?, ?, ?)")) {
                byte[] payload = new byte[600];
                for (int i = 0; i < EXECUTIONS; i++) {
                    String id = "Execution|" + UUID.randomUUID();
                    for (int seq = 1; seq <= 2; seq++) {
                        insert.setString(1, id);
                        insert.setLong(2, seq);
                        insert.setBytes(3, payload);
                        insert.executeUpdate();
                    }
                }
            }
            if (keeper.isPresent()) {
                // Two retentions and a round more: what the last commits freed can be reused by now.
                Thread.sleep(2 * QUICK.retention().toMillis() + QUICK.interval().toMillis());
                keeper.get().close();
            }
            try (Statement s = c.createStatement(); ResultSet rows = s.executeQuery("SELECT COUNT(*) FROM journal")) {
                rows.next();
                assertEquals(2 * EXECUTIONS, rows.getLong(1), "every commit is there");
            }
            return Files.size(Path.of(base + ".mv.db"));
        }
    }

    @Test
    void onlyAnH2FileThisJvmOpensIsKept() {
        assertTrue(H2Housekeeping.isEmbeddedFile("jdbc:h2:file:./data/agentexec;WRITE_DELAY=0"));
        assertTrue(H2Housekeeping.isEmbeddedFile("jdbc:h2:./data/agentexec"));
        assertTrue(H2Housekeeping.isEmbeddedFile("JDBC:H2:~/agentexec"));
        assertFalse(H2Housekeeping.isEmbeddedFile("jdbc:h2:mem:agentexec"));
        assertFalse(H2Housekeeping.isEmbeddedFile("jdbc:h2:tcp://127.0.0.1/agentexec"));
        assertFalse(H2Housekeeping.isEmbeddedFile("jdbc:h2:ssl://127.0.0.1/agentexec"));
        assertFalse(H2Housekeeping.isEmbeddedFile("jdbc:postgresql://127.0.0.1/agentexec"));
        PersistenceSettings memory = new PersistenceSettings(Dialect.H2, "jdbc:h2:mem:hk-" + UUID.randomUUID(), "sa", "",
                "", 1);
        assertTrue(H2Housekeeping.startIfEmbeddedFile(memory, QUICK).isEmpty());
        PersistenceSettings file = new PersistenceSettings(Dialect.H2, "jdbc:h2:file:" + dir.resolve("off"), "sa", "",
                "", 1);
        H2Housekeeping.Settings off = new H2Housekeeping.Settings(false, QUICK.interval(), QUICK.retention(), 80, 1);
        assertTrue(H2Housekeeping.startIfEmbeddedFile(file, off).isEmpty(), "an operator can turn it off");
    }

    @Test
    void settingsThatWouldReuseAChunkBeforeAnFsyncCoveredItAreRefused() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new H2Housekeeping.Settings(
                true, Duration.ofSeconds(1), Duration.ofMillis(1500), 80, 1024));
        assertTrue(e.getMessage().contains("retention"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new H2Housekeeping.Settings(true, Duration.ZERO,
                Duration.ofSeconds(5), 80, 1024));
        assertThrows(IllegalArgumentException.class, () -> new H2Housekeeping.Settings(true, Duration.ofSeconds(1),
                Duration.ofSeconds(5), 0, 1024));
        assertThrows(IllegalArgumentException.class, () -> new H2Housekeeping.Settings(true, Duration.ofSeconds(1),
                Duration.ofSeconds(5), 80, 0));
    }
}
