package io.agentexec.sandbox.backend;

/**
 * Who judges whether the node owning a sandbox still lives (the cluster module, from its membership): asked by the
 * orphan reaper for each sandbox stamped by a node other than this engine's own.
 */
@FunctionalInterface
public interface OwnerLiveness {
    /** What the judge can say of an owner. */
    enum Verdict {
        /** A member of the cluster (its sandboxes are left alone). */
        ALIVE,
        /** Known to be gone from the cluster (removed or downed, or replaced at its address): its sandboxes are orphans. */
        GONE,
        /** Not known, or not judged now (another cluster's node, or this node has not joined yet): left alone. */
        UNKNOWN
    }

    /** Nobody is judged: only the checks needing no cluster apply (a previous incarnation, a dead JVM of this host). */
    OwnerLiveness NO_JUDGE = owner -> Verdict.UNKNOWN;

    Verdict of(NodeOwner owner);
}
