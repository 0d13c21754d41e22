package io.agentexec.sandbox.backend;

import java.util.Objects;

/**
 * The cluster node an engine makes sandboxes for, stamped on each of them so that any node sharing the sandbox
 * runtime (a Docker daemon) can tell, from the cluster's membership, whether their owner is still alive: its cluster
 * address ({@code pekko://system@host:port}), the uid of this incarnation of it (a node restarted on the same address
 * has another) and its node name (for people: {@code docker ps} filters, metrics). The sandbox module knows nothing of
 * clusters; the cluster module supplies this and judges liveness ({@link OwnerLiveness}).
 */
public record NodeOwner(String address, long uid, String name) {
    public NodeOwner {
        Objects.requireNonNull(address, "address");
        Objects.requireNonNull(name, "name");
        if (address.isBlank()) {
            throw new IllegalArgumentException("a node owner needs its cluster address");
        }
    }

    /** Whether {@code other} is an earlier or later incarnation of this node: the same address, another uid. */
    public boolean otherIncarnationOf(NodeOwner other) {
        return address.equals(other.address) && uid != other.uid;
    }
}
