package io.agentexec.gateway.tenant;

import io.agentexec.cluster.ClusterSettings.PersistenceSettings;
import io.agentexec.gateway.spi.TenantId;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Types;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalInt;

/**
 * Tenants and the SHA-256 of their API keys in the journal's database (tables {@code agentexec_tenants} and
 * {@code agentexec_api_keys}, migration V3): what every gateway node of a cluster authenticates against, and what
 * {@code agentexec tenant create|list|revoke|rotate} writes. A key is returned once, at creation, and never stored.
 * Plain JDBC, a connection per call: an operator's command, or one read of the whole (small) table per refresh.
 */
public final class TenantStore {

    /** A tenant's row: its own quotas (empty: the node's defaults), its active keys, and whether it is revoked. */
    public record Row(TenantId id, OptionalInt maxLiveSandboxes, OptionalDouble requestsPerSecond, OptionalInt burst,
                      long createdAtMillis, Optional<Long> revokedAtMillis, List<String> activeKeySha256) {
        public Row {
            activeKeySha256 = List.copyOf(activeKeySha256);
        }

        public boolean revoked() {
            return revokedAtMillis.isPresent();
        }

        /** The policy this tenant's requests are held to: its own quotas over the node's defaults. */
        public TenantPolicy policy(TenantPolicy defaults) {
            return new TenantPolicy(maxLiveSandboxes.orElse(defaults.maxLiveSandboxes()),
                    requestsPerSecond.orElse(defaults.requestsPerSecond()), burst.orElse(defaults.burst()),
                    defaults.execution());
        }
    }

    /** Quotas set on a tenant; an empty one keeps the node's default. */
    public record Quotas(OptionalInt maxLiveSandboxes, OptionalDouble requestsPerSecond, OptionalInt burst) {
        public static final Quotas DEFAULTS = new Quotas(OptionalInt.empty(), OptionalDouble.empty(), OptionalInt.empty());

        public Quotas {
            if (maxLiveSandboxes.isPresent() && maxLiveSandboxes.getAsInt() < 0) {
                throw new IllegalArgumentException("max-live-sandboxes must be >= 0, got " + maxLiveSandboxes.getAsInt());
            }
            if (requestsPerSecond.isPresent() && !(requestsPerSecond.getAsDouble() > 0)) {
                throw new IllegalArgumentException("requests-per-second must be > 0, got " + requestsPerSecond.getAsDouble());
            }
            if (burst.isPresent() && burst.getAsInt() < 1) {
                throw new IllegalArgumentException("burst must be >= 1, got " + burst.getAsInt());
            }
        }
    }

    /** Thrown for an operator's request the tables refuse (a tenant that exists, or does not). */
    public static final class TenantException extends RuntimeException {
        public TenantException(String message) {
            super(message);
        }
    }

    private final PersistenceSettings persistence;

    public TenantStore(PersistenceSettings persistence) {
        this.persistence = persistence;
    }

    /** Creates a tenant with one new key and returns the key (shown once). Refused when the id was ever used. */
    public String create(TenantId id, Quotas quotas, long nowMillis) throws SQLException {
        try (Connection c = persistence.connect()) {
            c.setAutoCommit(false);
            try {
                if (exists(c, id)) {
                    throw new TenantException("tenant '" + id + "' already exists (a revoked tenant's id is not reused)");
                }
                insertTenant(c, id, quotas, nowMillis);
                String key = TenantRegistry.newKey();
                insertKey(c, id, TenantRegistry.sha256(key), nowMillis);
                c.commit();
                return key;
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            }
        }
    }

    /**
     * Creates the tenant {@code id} with a new key when there is no tenant at all (a fresh cluster's first start);
     * empty when there is one (another node may have made it at the same time: the primary key decides).
     */
    public Optional<String> createFirst(TenantId id, long nowMillis) throws SQLException {
        if (!rows().isEmpty()) {
            return Optional.empty();
        }
        try {
            return Optional.of(create(id, Quotas.DEFAULTS, nowMillis));
        } catch (TenantException e) {
            return Optional.empty();
        } catch (SQLException e) {
            if (isIntegrityViolation(e)) {
                return Optional.empty();
            }
            throw e;
        }
    }

    /** Revokes every key of the tenant and the tenant itself; its id is not reused. */
    public void revoke(TenantId id, long nowMillis) throws SQLException {
        try (Connection c = persistence.connect()) {
            c.setAutoCommit(false);
            try {
                if (!exists(c, id)) {
                    throw new TenantException("no tenant '" + id + "'");
                }
                revokeKeys(c, id, nowMillis);
                try (PreparedStatement s = c.prepareStatement(
                        "UPDATE agentexec_tenants SET revoked_at = ? WHERE tenant_id = ? AND revoked_at IS NULL")) {
                    s.setLong(1, nowMillis);
                    s.setString(2, id.value());
                    s.executeUpdate();
                }
                c.commit();
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            }
        }
    }

    /** Gives the tenant a new key and revokes its others; returns the new key (shown once). */
    public String rotate(TenantId id, long nowMillis) throws SQLException {
        try (Connection c = persistence.connect()) {
            c.setAutoCommit(false);
            try {
                Optional<Row> row = rows(c).stream().filter(r -> r.id().equals(id)).findFirst();
                if (row.isEmpty()) {
                    throw new TenantException("no tenant '" + id + "'");
                }
                if (row.get().revoked()) {
                    throw new TenantException("tenant '" + id + "' is revoked; create another");
                }
                revokeKeys(c, id, nowMillis);
                String key = TenantRegistry.newKey();
                insertKey(c, id, TenantRegistry.sha256(key), nowMillis);
                c.commit();
                return key;
            } catch (SQLException | RuntimeException e) {
                c.rollback();
                throw e;
            }
        }
    }

    /**
     * Adds the tenants and key hashes of a keys file the database does not hold yet (a node's
     * {@code agentexec.gateway.auth.keys-file}, read at start): a tenant or key already there, revoked or not, is
     * left as it is, so that an import never brings back a revoked key. Returns how many keys were added.
     */
    public int importKeys(Map<TenantId, Quotas> tenants, Map<String, TenantId> keyHashes, long nowMillis) throws SQLException {
        int added = 0;
        try (Connection c = persistence.connect()) {
            for (Map.Entry<TenantId, Quotas> t : tenants.entrySet()) {
                if (!exists(c, t.getKey())) {
                    try {
                        insertTenant(c, t.getKey(), t.getValue(), nowMillis);
                    } catch (SQLException e) {
                        if (!isIntegrityViolation(e)) {
                            throw e; // another node imported it at the same moment: fine
                        }
                    }
                }
            }
            for (Map.Entry<String, TenantId> k : keyHashes.entrySet()) {
                try (PreparedStatement s = c.prepareStatement("SELECT 1 FROM agentexec_api_keys WHERE key_sha256 = ?")) {
                    s.setString(1, k.getKey());
                    try (ResultSet r = s.executeQuery()) {
                        if (r.next()) {
                            continue;
                        }
                    }
                }
                try {
                    insertKey(c, k.getValue(), k.getKey(), nowMillis);
                    added++;
                } catch (SQLException e) {
                    if (!isIntegrityViolation(e)) {
                        throw e;
                    }
                }
            }
        }
        return added;
    }

    /** Every tenant, revoked ones included, by id. */
    public List<Row> rows() throws SQLException {
        try (Connection c = persistence.connect()) {
            return rows(c);
        }
    }

    private static List<Row> rows(Connection c) throws SQLException {
        Map<String, List<String>> keys = new HashMap<>();
        try (PreparedStatement s = c.prepareStatement(
                "SELECT tenant_id, key_sha256 FROM agentexec_api_keys WHERE revoked_at IS NULL");
             ResultSet r = s.executeQuery()) {
            while (r.next()) {
                keys.computeIfAbsent(r.getString(1), k -> new ArrayList<>()).add(r.getString(2).trim());
            }
        }
        List<Row> rows = new ArrayList<>();
        try (PreparedStatement s = c.prepareStatement("SELECT tenant_id, max_live_sandboxes, requests_per_second, burst, "
                + "created_at, revoked_at FROM agentexec_tenants ORDER BY tenant_id");
             ResultSet r = s.executeQuery()) {
            while (r.next()) {
                String id = r.getString(1);
                int max = r.getInt(2);
                OptionalInt maxLive = r.wasNull() ? OptionalInt.empty() : OptionalInt.of(max);
                double rps = r.getDouble(3);
                OptionalDouble rate = r.wasNull() ? OptionalDouble.empty() : OptionalDouble.of(rps);
                int b = r.getInt(4);
                OptionalInt burst = r.wasNull() ? OptionalInt.empty() : OptionalInt.of(b);
                long created = r.getLong(5);
                long revokedAt = r.getLong(6);
                Optional<Long> revoked = r.wasNull() ? Optional.empty() : Optional.of(revokedAt);
                rows.add(new Row(new TenantId(id), maxLive, rate, burst, created, revoked,
                        revoked.isPresent() ? List.of() : keys.getOrDefault(id, List.of())));
            }
        }
        return rows;
    }

    private static boolean exists(Connection c, TenantId id) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("SELECT 1 FROM agentexec_tenants WHERE tenant_id = ?")) {
            s.setString(1, id.value());
            try (ResultSet r = s.executeQuery()) {
                return r.next();
            }
        }
    }

    private static void insertTenant(Connection c, TenantId id, Quotas q, long nowMillis) throws SQLException {
        try (PreparedStatement s = c.prepareStatement("INSERT INTO agentexec_tenants (tenant_id, max_live_sandboxes, "
                + "requests_per_second, burst, created_at) VALUES (?, ?, ?, ?, ?)")) {
            s.setString(1, id.value());
            if (q.maxLiveSandboxes().isPresent()) {
                s.setInt(2, q.maxLiveSandboxes().getAsInt());
            } else {
                s.setNull(2, Types.INTEGER);
            }
            if (q.requestsPerSecond().isPresent()) {
                s.setDouble(3, q.requestsPerSecond().getAsDouble());
            } else {
                s.setNull(3, Types.DOUBLE);
            }
            if (q.burst().isPresent()) {
                s.setInt(4, q.burst().getAsInt());
            } else {
                s.setNull(4, Types.INTEGER);
            }
            s.setLong(5, nowMillis);
            s.executeUpdate();
        }
    }

    private static void insertKey(Connection c, TenantId id, String sha256, long nowMillis) throws SQLException {
        try (PreparedStatement s = c.prepareStatement(
                "INSERT INTO agentexec_api_keys (key_sha256, tenant_id, created_at) VALUES (?, ?, ?)")) {
            s.setString(1, sha256);
            s.setString(2, id.value());
            s.setLong(3, nowMillis);
            s.executeUpdate();
        }
    }

    private static void revokeKeys(Connection c, TenantId id, long nowMillis) throws SQLException {
        try (PreparedStatement s = c.prepareStatement(
                "UPDATE agentexec_api_keys SET revoked_at = ? WHERE tenant_id = ? AND revoked_at IS NULL")) {
            s.setLong(1, nowMillis);
            s.setString(2, id.value());
            s.executeUpdate();
        }
    }

    private static boolean isIntegrityViolation(SQLException e) {
        return e.getSQLState() != null && e.getSQLState().startsWith("23");
    }

}
