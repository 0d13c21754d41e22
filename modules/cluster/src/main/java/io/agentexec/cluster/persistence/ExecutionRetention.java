package io.agentexec.cluster.persistence;

import com.typesafe.config.Config;
import io.agentexec.cluster.ClusterSettings.PersistenceSettings;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Clock;
import java.time.Duration;
import java.util.LinkedHashSet;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Deletes the journal records of one-off executions that finished longer than {@code keep} ago. Without it the
 * journal holds every one-off's events for ever (~1 KB each: a busy cluster's database grows by gigabytes a day).
 *
 * <p>What it deletes is exactly one execution's events, all of them, and only once the execution has finished: its
 * events include the {@code Finished} event (its class name is in the journal's manifest column and never changes),
 * and none of them was written within {@code keep}. An execution in progress, however old, is never touched; nor is
 * any other entity's journal. Afterwards the id is unknown: a lookup answers not found and a request with the same id
 * runs anew, as for an id never used (README: the gateway's execution records, and the journal under "The cluster").
 *
 * <p>A round walks the journal in its insertion order ({@code ordering}, indexed) from where the last round stopped,
 * up to the first row written within {@code keep} or {@code maxScanRows} rows, and deletes the finished executions it
 * met. The cursor lives in memory: after a restart the first rounds walk the older rows once more. Rounds run on
 * one node at a time ({@code leader}: the oldest gateway), each in its own transactions; a delete that races an
 * entity starting on another node leaves that entity either every event or none.
 */
public final class ExecutionRetention implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ExecutionRetention.class);
    /** Rows deleted per transaction. */
    private static final int DELETE_BATCH = 500;

    /** {@code agentexec.cluster.execution.finished-retention} (see reference.conf). */
    public record Settings(Optional<Duration> keep, Duration interval, int maxScanRows) {
        public Settings {
            if (keep.isPresent() && (keep.get().isNegative() || keep.get().isZero())) {
                throw new IllegalArgumentException("agentexec.cluster.execution.finished-retention.keep must be positive "
                        + "or off, got " + keep.get());
            }
            if (interval.isNegative() || interval.isZero()) {
                throw new IllegalArgumentException("agentexec.cluster.execution.finished-retention.interval must be "
                        + "positive, got " + interval);
            }
            if (maxScanRows < 1) {
                throw new IllegalArgumentException("agentexec.cluster.execution.finished-retention.max-scan-rows must be "
                        + "at least 1, got " + maxScanRows);
            }
        }

        public static Settings fromConfig(Config c) {
            String keep = c.getString("keep").trim().toLowerCase(Locale.ROOT);
            return new Settings(keep.equals("off") || keep.equals("false") ? Optional.empty()
                    : Optional.of(c.getDuration("keep")), c.getDuration("interval"), c.getInt("max-scan-rows"));
        }
    }

    /** What one round did. */
    public record Round(int scannedRows, int deletedExecutions, boolean reachedRecentRows) {
    }

    private final PersistenceSettings persistence;
    private final Duration keep;
    private final int maxScanRows;
    private final String idPrefix;
    private final String finishedManifest;
    private final Clock clock;
    private final BooleanSupplier leader;
    private final ScheduledExecutorService rounds;
    /** The highest {@code ordering} a round has walked past: every row at or below it was examined. */
    private long cursor;

    /**
     * @param entityType       the one-off executions' entity type name (their persistence ids are {@code TYPE|key})
     * @param finishedManifest the class name of their {@code Finished} event, as the serializer writes its manifest
     * @param leader           whether this node is the one that deletes now
     */
    public ExecutionRetention(PersistenceSettings persistence, Duration keep, int maxScanRows, String entityType,
                              String finishedManifest, Clock clock, BooleanSupplier leader) {
        this.persistence = persistence;
        this.keep = keep;
        this.maxScanRows = maxScanRows;
        this.idPrefix = entityType + "|";
        this.finishedManifest = finishedManifest;
        this.clock = clock;
        this.leader = leader;
        this.rounds = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "agentexec-execution-retention");
            t.setDaemon(true);
            return t;
        });
    }

    /** Starts the rounds unless the settings keep records for ever. */
    public static Optional<ExecutionRetention> start(PersistenceSettings persistence, Settings settings, String entityType,
                                                     String finishedManifest, BooleanSupplier leader) {
        if (settings.keep().isEmpty()) {
            return Optional.empty();
        }
        ExecutionRetention retention = new ExecutionRetention(persistence, settings.keep().get(), settings.maxScanRows(),
                entityType, finishedManifest, Clock.systemUTC(), leader);
        long every = settings.interval().toNanos();
        retention.rounds.scheduleWithFixedDelay(retention::roundQuietly, every, every, TimeUnit.NANOSECONDS);
        return Optional.of(retention);
    }

    /** One round, now; nothing when this node is not the leader. */
    public synchronized Round round() throws SQLException {
        if (!leader.getAsBoolean()) {
            return new Round(0, 0, false);
        }
        long cutoff = clock.millis() - keep.toMillis();
        Set<String> candidates = new LinkedHashSet<>();
        int scanned = 0;
        boolean recent = false;
        try (Connection c = persistence.connect()) {
            try (PreparedStatement walk = c.prepareStatement("SELECT ordering, persistence_id, write_timestamp "
                    + "FROM event_journal WHERE ordering > ? ORDER BY ordering LIMIT ?")) {
                walk.setLong(1, cursor);
                walk.setInt(2, maxScanRows);
                try (ResultSet rows = walk.executeQuery()) {
                    while (rows.next()) {
                        long written = rows.getLong(3);
                        if (!rows.wasNull() && written >= cutoff) {
                            recent = true; // rows go in roughly in time order: the rest are newer
                            break;
                        }
                        scanned++;
                        cursor = rows.getLong(1);
                        String id = rows.getString(2);
                        if (id.startsWith(idPrefix)) {
                            candidates.add(id);
                        }
                    }
                }
            }
            int deleted = delete(c, candidates, cutoff);
            if (deleted > 0) {
                log.info("deleted the journal records of {} one-off executions that finished more than {} ago", deleted,
                        keep);
            }
            return new Round(scanned, deleted, recent);
        }
    }

    /** Deletes each candidate that has finished and has no event within the retention; returns how many. */
    private int delete(Connection c, Set<String> candidates, long cutoff) throws SQLException {
        if (candidates.isEmpty()) {
            return 0;
        }
        c.setAutoCommit(false); // the connection is this round's alone, closed after it
        int deleted = 0;
        try (PreparedStatement delete = c.prepareStatement("DELETE FROM event_journal WHERE persistence_id = ? "
                + "AND EXISTS (SELECT 1 FROM event_journal f WHERE f.persistence_id = ? AND f.event_ser_manifest LIKE ?) "
                + "AND NOT EXISTS (SELECT 1 FROM event_journal n WHERE n.persistence_id = ? AND n.write_timestamp >= ?)")) {
            int inBatch = 0;
            for (String id : candidates) {
                delete.setString(1, id);
                delete.setString(2, id);
                // the manifest may carry the serializer's version after the class name
                delete.setString(3, finishedManifest + "%");
                delete.setString(4, id);
                delete.setLong(5, cutoff);
                delete.addBatch();
                if (++inBatch == DELETE_BATCH) {
                    deleted += executed(delete.executeBatch());
                    c.commit();
                    inBatch = 0;
                }
            }
            if (inBatch > 0) {
                deleted += executed(delete.executeBatch());
                c.commit();
            }
        } catch (SQLException | RuntimeException e) {
            c.rollback();
            throw e;
        }
        return deleted;
    }

    /** How many statements of a batch deleted rows (one per execution). */
    private static int executed(int[] counts) {
        int n = 0;
        for (int count : counts) {
            if (count > 0 || count == java.sql.Statement.SUCCESS_NO_INFO) {
                n++;
            }
        }
        return n;
    }

    private void roundQuietly() {
        try {
            Round r;
            do {
                r = round(); // a backlog (the first rounds after a start) goes on at once, one bounded walk at a time
            } while (r.scannedRows() >= maxScanRows && !r.reachedRecentRows() && !rounds.isShutdown());
        } catch (SQLException | RuntimeException e) {
            log.warn("deleting finished one-off executions' journal records: {}", e.toString());
        }
    }

    @Override
    public void close() {
        rounds.shutdownNow();
    }
}
