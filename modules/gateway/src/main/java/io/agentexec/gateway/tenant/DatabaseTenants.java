package io.agentexec.gateway.tenant;

import io.agentexec.gateway.spi.TenantId;
import java.sql.SQLException;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cluster's tenants and keys as this gateway node sees them: the database's tables ({@link TenantStore}) read
 * again by the first request that finds its copy older than {@code refreshInterval} (the others wait for that read:
 * one small query per interval). A request is thus answered from a read that started at most {@code refreshInterval}
 * before it: a key revoked on any node (or by the CLI) is refused by every node within that interval, while the
 * database answers. When it does not, the last copy is kept and the failure logged; reads are retried every interval.
 */
public final class DatabaseTenants implements TenantDirectory {
    private static final Logger log = LoggerFactory.getLogger(DatabaseTenants.class);

    private record Snapshot(TenantRegistry registry, long readAtNanos) {
    }

    private final TenantStore store;
    private final TenantPolicy defaults;
    private final long refreshNanos;
    private final LongSupplier nanoClock;
    private final Object reading = new Object();
    private volatile Snapshot snapshot;

    private DatabaseTenants(TenantStore store, TenantPolicy defaults, Duration refreshInterval, LongSupplier nanoClock,
                            Snapshot first) {
        this.store = store;
        this.defaults = defaults;
        this.refreshNanos = refreshInterval.toNanos();
        this.nanoClock = nanoClock;
        this.snapshot = first;
    }

    /** Reads the tables once now; throws when the database cannot be read (a node does not start blind). */
    public static DatabaseTenants start(TenantStore store, TenantPolicy defaults, Duration refreshInterval) throws SQLException {
        if (refreshInterval.isNegative() || refreshInterval.isZero()) {
            throw new IllegalArgumentException("agentexec.gateway.auth.refresh-interval must be positive, got " + refreshInterval);
        }
        long started = System.nanoTime();
        return new DatabaseTenants(store, defaults, refreshInterval, System::nanoTime,
                new Snapshot(read(store, defaults), started));
    }

    @Override
    public Optional<Tenant> authenticate(String apiKey) {
        return current().authenticate(apiKey);
    }

    @Override
    public Optional<Tenant> tenant(TenantId id) {
        return current().tenant(id);
    }

    /** How many tenants hold an active key, as of the last read. */
    public int tenantCount() {
        return current().tenantCount();
    }

    private TenantRegistry current() {
        Snapshot s = snapshot;
        if (nanoClock.getAsLong() - s.readAtNanos() < refreshNanos) {
            return s.registry();
        }
        synchronized (reading) {
            s = snapshot;
            long now = nanoClock.getAsLong();
            if (now - s.readAtNanos() < refreshNanos) {
                return s.registry();
            }
            try {
                snapshot = new Snapshot(read(store, defaults), now);
            } catch (SQLException | RuntimeException e) {
                log.warn("cannot read the tenants from the database ({}); keeping the copy read {} s ago, retrying in {}",
                        e.toString(), (now - s.readAtNanos()) / 1_000_000_000L, Duration.ofNanos(refreshNanos));
                snapshot = new Snapshot(s.registry(), now);
            }
            return snapshot.registry();
        }
    }

    private static TenantRegistry read(TenantStore store, TenantPolicy defaults) throws SQLException {
        Map<String, Tenant> byKey = new HashMap<>();
        for (TenantStore.Row row : store.rows()) {
            if (row.revoked()) {
                continue;
            }
            Tenant tenant = new Tenant(row.id(), row.policy(defaults));
            for (String hash : row.activeKeySha256()) {
                byKey.put(hash.toLowerCase(java.util.Locale.ROOT), tenant);
            }
        }
        return TenantRegistry.of(byKey);
    }
}
