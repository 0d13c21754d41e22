package io.agentexec.cluster.reaper;

import io.agentexec.cluster.ClusterSettings.PersistenceSettings;
import io.agentexec.sandbox.backend.NodeOwner;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The worker nodes that ever started in this cluster (table {@code agentexec_nodes}, migration V2), in the journal's
 * database: the one thing every node of a cluster shares and no other cluster does. A worker writes its row when it
 * starts (before its first container) and again when it is up; the reaper reads them to tell a gone node of this
 * cluster from another cluster's node whose containers share the daemon. Plain JDBC, a connection per call: a few
 * calls per node start and per sweep.
 */
public final class NodeRegistry {
    /** What the registry knows of one incarnation of a worker. */
    public record Entry(String address, long uid, String name, long startedAtMillis, Optional<Long> upAtMillis) {
    }

    private final PersistenceSettings persistence;

    public NodeRegistry(PersistenceSettings persistence) {
        this.persistence = persistence;
    }

    /** Records that {@code node} started now (again: nothing changes). Throws when the database cannot be written. */
    public void started(NodeOwner node, long nowMillis) throws SQLException {
        try (Connection c = persistence.connect();
             PreparedStatement insert = c.prepareStatement("INSERT INTO agentexec_nodes (address, uid, node_name, started_at) "
                     + "SELECT ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM agentexec_nodes WHERE address = ? AND uid = ?)")) {
            insert.setString(1, node.address());
            insert.setLong(2, node.uid());
            insert.setString(3, node.name());
            insert.setLong(4, nowMillis);
            insert.setString(5, node.address());
            insert.setLong(6, node.uid());
            insert.executeUpdate();
        }
    }

    /** Records that {@code node} is an up member now (its row made if its start could not be written). */
    public void up(NodeOwner node, long nowMillis) throws SQLException {
        started(node, nowMillis);
        try (Connection c = persistence.connect();
             PreparedStatement update = c.prepareStatement(
                     "UPDATE agentexec_nodes SET up_at = ? WHERE address = ? AND uid = ? AND up_at IS NULL")) {
            update.setLong(1, nowMillis);
            update.setString(2, node.address());
            update.setLong(3, node.uid());
            update.executeUpdate();
        }
    }

    /** Every incarnation the registry holds, by address and uid. */
    public Map<Key, Entry> all() throws SQLException {
        Map<Key, Entry> all = new HashMap<>();
        try (Connection c = persistence.connect();
             PreparedStatement select = c.prepareStatement(
                     "SELECT address, uid, node_name, started_at, up_at FROM agentexec_nodes");
             ResultSet rows = select.executeQuery()) {
            while (rows.next()) {
                long up = rows.getLong(5);
                Optional<Long> upAt = rows.wasNull() ? Optional.empty() : Optional.of(up);
                Entry e = new Entry(rows.getString(1), rows.getLong(2), rows.getString(3), rows.getLong(4), upAt);
                all.put(new Key(e.address(), e.uid()), e);
            }
        }
        return all;
    }

    /** A node incarnation: its address and uid. */
    public record Key(String address, long uid) {
        public static Key of(NodeOwner node) {
            return new Key(node.address(), node.uid());
        }
    }

}
