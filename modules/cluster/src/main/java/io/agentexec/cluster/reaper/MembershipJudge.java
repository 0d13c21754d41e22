package io.agentexec.cluster.reaper;

import io.agentexec.sandbox.backend.NodeOwner;
import io.agentexec.sandbox.backend.OwnerLiveness;
import java.time.Duration;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;
import org.apache.pekko.cluster.ClusterEvent.CurrentClusterState;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;

/**
 * Whether the node owning a sandbox container still lives, as this node's view of the cluster says at one sweep:
 * <ul>
 *   <li>a member with the owner's address and uid: alive, unless downed (then gone);</li>
 *   <li>a node this node saw removed: gone;</li>
 *   <li>otherwise, once this node is itself up (its view of the members is the cluster's), a worker of this cluster
 *       (in the {@link NodeRegistry}) that was up once, or that started more than the join grace ago: gone;</li>
 *   <li>anything else (another cluster's node, a node still joining, or this node not up yet): unknown, left alone.</li>
 * </ul>
 */
final class MembershipJudge implements OwnerLiveness {
    private final CurrentClusterState state;
    private final Member self;
    private final Set<NodeRegistry.Key> removed;
    private final Supplier<Optional<Map<NodeRegistry.Key, NodeRegistry.Entry>>> registry;
    private final Duration joinGrace;
    private final long nowMillis;
    private Optional<Map<NodeRegistry.Key, NodeRegistry.Entry>> loaded;

    /**
     * @param registry read at most once, when an owner needs it; empty when it cannot be read (nothing is then judged
     *                 gone by it)
     */
    MembershipJudge(CurrentClusterState state, Member self, Set<NodeRegistry.Key> removed,
                    Supplier<Optional<Map<NodeRegistry.Key, NodeRegistry.Entry>>> registry, Duration joinGrace,
                    long nowMillis) {
        this.state = state;
        this.self = self;
        this.removed = Set.copyOf(removed);
        this.registry = registry;
        this.joinGrace = joinGrace;
        this.nowMillis = nowMillis;
    }

    @Override
    public Verdict of(NodeOwner owner) {
        NodeRegistry.Key key = NodeRegistry.Key.of(owner);
        if (removed.contains(key)) {
            return Verdict.GONE;
        }
        for (Member m : state.getMembers()) {
            if (m.address().toString().equals(owner.address()) && m.uniqueAddress().longUid() == owner.uid()) {
                return m.status() == MemberStatus.down() || m.status() == MemberStatus.removed()
                        ? Verdict.GONE : Verdict.ALIVE;
            }
        }
        // Not a member. Before this node is up, its view may lack members it has not heard of yet: judge nothing.
        if (self.status() != MemberStatus.up()) {
            return Verdict.UNKNOWN;
        }
        if (loaded == null) {
            loaded = registry.get();
        }
        Optional<NodeRegistry.Entry> entry = loaded.map(all -> all.get(key));
        if (entry.isEmpty()) {
            return Verdict.UNKNOWN; // not a node of this cluster (another one shares the daemon), or not registered yet
        }
        if (entry.get().upAtMillis().isPresent()) {
            return Verdict.GONE; // it was a member and no longer is
        }
        return nowMillis - entry.get().startedAtMillis() > joinGrace.toMillis() ? Verdict.GONE : Verdict.UNKNOWN;
    }
}
