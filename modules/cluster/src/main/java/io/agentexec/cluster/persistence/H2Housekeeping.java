package io.agentexec.cluster.persistence;

import com.typesafe.config.Config;
import io.agentexec.cluster.ClusterSettings.PersistenceSettings;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.h2.engine.SessionLocal;
import org.h2.jdbc.JdbcConnection;
import org.h2.mvstore.MVStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps an embedded H2 file journal's size in proportion to what it holds, and makes its commits durable within
 * {@code interval}.
 *
 * <p>H2's store (MVStore) writes every commit as a new chunk of pages and never overwrites a live one. Its background
 * writer rewrites chunks that are mostly dead, so that they can be freed, and a freed chunk is reused once it has been
 * unused for the retention time (45 s by default, H2's guess at how long an OS takes to flush its buffers). The
 * journal's {@code WRITE_DELAY=0} (each commit in the file before it returns; see reference.conf) turns that
 * background writer off, and with it the rewriting: measured, a node's file grew ~18 KB per one-off execution without
 * bound (480 MB after 30,000 executions holding 33 MB of live data), and a writer of 200 commits a second grew its file
 * to 746 MB in 250 s where 36 MB were live.
 *
 * <p>This does that work itself, every {@code interval}: it forces the file to the device (fsync), then rewrites up
 * to {@code max-rewrite} bytes of chunks less than {@code fill-rate} percent live. The retention time is set to
 * {@code retention}, a few intervals: a chunk is reused only once the commits that made it dead have been forced to
 * the device, so a power loss finds a consistent file at the last fsync. The same writer: 132 MB in 250 s, flat. And
 * acknowledged commits, which H2 alone never forces, survive a power loss once the next round has run.
 */
public final class H2Housekeeping implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(H2Housekeeping.class);

    /** {@code agentexec.cluster.persistence.h2-housekeeping} (see reference.conf). */
    public record Settings(boolean enabled, Duration interval, Duration retention, int fillRate, long maxRewriteBytes) {
        public Settings {
            if (enabled) {
                if (interval.isNegative() || interval.isZero()) {
                    throw new IllegalArgumentException("agentexec.cluster.persistence.h2-housekeeping.interval must be "
                            + "positive, got " + interval);
                }
                // A chunk may be overwritten only after an fsync has covered the commits that made it dead.
                if (retention.compareTo(interval.multipliedBy(2)) < 0) {
                    throw new IllegalArgumentException("agentexec.cluster.persistence.h2-housekeeping.retention ("
                            + retention + ") must be at least twice its interval (" + interval + "): a chunk is "
                            + "reused only once the file has been forced to the device since it died");
                }
                if (fillRate < 1 || fillRate > 100) {
                    throw new IllegalArgumentException("agentexec.cluster.persistence.h2-housekeeping.fill-rate is a "
                            + "percentage, 1 to 100; got " + fillRate);
                }
                if (maxRewriteBytes < 1 || maxRewriteBytes > Integer.MAX_VALUE) {
                    throw new IllegalArgumentException("agentexec.cluster.persistence.h2-housekeeping.max-rewrite must"
                            + " be 1 byte to 2 GiB; got " + maxRewriteBytes);
                }
            }
        }

        public static Settings fromConfig(Config c) {
            return new Settings(c.getBoolean("enabled"), c.getDuration("interval"), c.getDuration("retention"),
                    c.getInt("fill-rate"), c.getBytes("max-rewrite"));
        }
    }

    private final Connection connection;
    private final MVStore store;
    private final Settings settings;
    private final ScheduledExecutorService rounds;

    private H2Housekeeping(Connection connection, MVStore store, Settings settings) {
        this.connection = connection;
        this.store = store;
        this.settings = settings;
        this.rounds = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "agentexec-h2-housekeeping");
            t.setDaemon(true);
            return t;
        });
    }

    /**
     * Starts the housekeeping of the journal's database when it is an H2 file this JVM opens itself (not in memory,
     * not an H2 server's), and the settings enable it.
     */
    public static Optional<H2Housekeeping> startIfEmbeddedFile(PersistenceSettings persistence, Settings settings) {
        if (!settings.enabled() || persistence.dialect() != Dialect.H2 || !isEmbeddedFile(persistence.url())) {
            return Optional.empty();
        }
        Connection connection = null;
        try {
            connection = DriverManager.getConnection(persistence.url(), persistence.user(), persistence.password());
            MVStore store = ((SessionLocal) connection.unwrap(JdbcConnection.class).getSession()).getDatabase()
                    .getStore().getMvStore();
            if (store.getFileStore() == null) {
                connection.close();
                return Optional.empty();
            }
            store.setRetentionTime((int) Math.min(Integer.MAX_VALUE, settings.retention().toMillis()));
            H2Housekeeping housekeeping = new H2Housekeeping(connection, store, settings);
            long every = settings.interval().toNanos();
            housekeeping.rounds.scheduleWithFixedDelay(housekeeping::roundQuietly, every, every, TimeUnit.NANOSECONDS);
            return Optional.of(housekeeping);
        } catch (SQLException | RuntimeException e) {
            closeQuietly(connection);
            throw new IllegalStateException("cannot open the H2 journal " + persistence.url() + " for its housekeeping: "
                    + e.getMessage(), e);
        }
    }

    /** {@code jdbc:h2:file:...} or {@code jdbc:h2:PATH}; not {@code mem:}, nor a server's {@code tcp:}/{@code ssl:}. */
    static boolean isEmbeddedFile(String url) {
        String lower = url.toLowerCase(Locale.ROOT);
        if (!lower.startsWith("jdbc:h2:")) {
            return false;
        }
        String rest = lower.substring("jdbc:h2:".length());
        return !(rest.startsWith("mem:") || rest.startsWith("tcp:") || rest.startsWith("ssl:") || rest.startsWith("zip:"));
    }

    /** One round: the file forced to the device, then mostly-dead chunks rewritten. */
    void round() {
        store.sync();
        store.compact(settings.fillRate(), (int) settings.maxRewriteBytes());
    }

    private void roundQuietly() {
        try {
            round();
        } catch (RuntimeException e) {
            log.warn("H2 journal housekeeping: {}", e.toString());
        }
    }

    /** Stops the rounds and forces the file a last time; the database closes with its last connection. */
    @Override
    public void close() {
        rounds.shutdown();
        try {
            if (!rounds.awaitTermination(settings.interval().toMillis() + 10_000, TimeUnit.MILLISECONDS)) {
                rounds.shutdownNow();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            rounds.shutdownNow();
        }
        try {
            if (!store.isClosed()) {
                store.sync();
            }
        } catch (RuntimeException e) {
            log.warn("H2 journal housekeeping: the last fsync failed: {}", e.toString());
        }
        closeQuietly(connection);
    }

    private static void closeQuietly(Connection connection) {
        if (connection != null) {
            try {
                connection.close();
            } catch (SQLException e) {
                log.debug("closing the housekeeping connection: {}", e.getMessage());
            }
        }
    }
}
