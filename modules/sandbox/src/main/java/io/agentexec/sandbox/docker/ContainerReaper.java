package io.agentexec.sandbox.docker;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.model.Container;
import io.agentexec.sandbox.backend.NodeOwner;
import io.agentexec.sandbox.backend.OwnerLiveness;
import java.util.Collection;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Finds the sandbox containers nobody will remove (as Testcontainers' ResourceReaper does for its own): the leftovers
 * of owners that are gone, and at this JVM's end (its close, or the shutdown hook when it exits without closing) its
 * own. Containers are told apart by the owner labels {@link ContainerOwner} puts on them. An owner is gone when its
 * JVM ran on this host and no longer runs, or, for a cluster node's engine, when it is an earlier incarnation of this
 * engine's node (the same address, another uid) or the cluster says it is no longer a member ({@link OwnerLiveness},
 * whatever host it ran on). Anything else is left alone: another host's JVM, or another cluster's node, may well be
 * alive.
 */
final class ContainerReaper implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ContainerReaper.class);

    /** What becomes of a managed container, by its owner label. */
    enum Fate {
        /**
         * Its owner is gone (a JVM of this host that no longer runs, an earlier incarnation of this node, a node the
         * cluster says is gone), or it has no readable owner: removed.
         */
        ORPHAN,
        /** This JVM's, for this engine's node if any: removed when it closes or exits. */
        OWN,
        /** A live JVM's or node's, or one nobody here can judge (another host's, another cluster's): left alone. */
        OTHERS
    }

    private final DockerClient client;
    private final ContainerRemoval removal;
    private final ContainerOwner self;
    private volatile Optional<Thread> shutdownHook = Optional.empty();

    ContainerReaper(DockerClient client, ContainerRemoval removal, ContainerOwner self) {
        this.client = client;
        this.removal = removal;
        this.self = self;
    }

    /** The decision from a JVM owner label alone (no node labels, nobody to judge nodes): as {@link #fate(Map, ContainerOwner, OwnerLiveness)}. */
    static Fate fate(String ownerLabel, ContainerOwner self) {
        return fate(ownerLabel == null ? Map.of() : Map.of(ContainerOwner.LABEL, ownerLabel), self, OwnerLiveness.NO_JUDGE);
    }

    /**
     * The decision, from a container's owner labels, whether that owner's JVM still runs on this host, and what
     * {@code judge} says of its node.
     */
    static Fate fate(Map<String, String> labels, ContainerOwner self, OwnerLiveness judge) {
        Optional<ContainerOwner> found = ContainerOwner.fromLabels(labels);
        if (found.isEmpty()) {
            return Fate.ORPHAN;
        }
        ContainerOwner owner = found.get();
        if (owner.sameJvm(self) && sameNode(owner.node(), self.node())) {
            return Fate.OWN;
        }
        if (owner.node().isPresent()) {
            NodeOwner node = owner.node().get();
            // Nobody else can hold this node's address while it runs: the owner is a crashed earlier incarnation.
            if (self.node().map(me -> me.otherIncarnationOf(node)).orElse(false)) {
                return Fate.ORPHAN;
            }
            if (!owner.sameJvm(self) && judge.of(node) == OwnerLiveness.Verdict.GONE) {
                return Fate.ORPHAN;
            }
        }
        return owner.isDeadOnThisHost() ? Fate.ORPHAN : Fate.OTHERS;
    }

    /** The same node incarnation (address and uid; the name is for people), or both no node. */
    private static boolean sameNode(Optional<NodeOwner> a, Optional<NodeOwner> b) {
        if (a.isEmpty() || b.isEmpty()) {
            return a.isEmpty() && b.isEmpty();
        }
        return a.get().address().equals(b.get().address()) && a.get().uid() == b.get().uid();
    }

    /** Removes managed containers whose owner is gone (no node judged: see {@link #reapOrphans(OwnerLiveness)}). */
    int reapOrphans() {
        return reapOrphans(OwnerLiveness.NO_JUDGE);
    }

    /** Removes managed containers whose owner is gone, {@code judge} saying which nodes are; returns how many. */
    int reapOrphans(OwnerLiveness judge) {
        int removed = 0;
        for (Container c : managedContainers()) {
            if (fate(labels(c), self, judge) == Fate.ORPHAN) {
                log.debug("removing orphan sandbox container {} (owner {})", c.getId(), labels(c));
                removal.now(c.getId());
                removed++;
            }
        }
        return removed;
    }

    /** Managed containers on the daemon, of any owner, in any state. */
    List<Container> managedContainers() {
        return client.listContainersCmd().withShowAll(true)
                .withLabelFilter(Map.of(ContainerSpec.MANAGED_LABEL, "true")).exec();
    }

    /**
     * Removes this JVM's containers now: those the caller knows of and any other the daemon lists with this JVM's
     * owner label (a removal that failed or timed out).
     */
    void removeOwn(Collection<String> known) {
        Set<String> ids = new LinkedHashSet<>(known);
        try {
            for (Container c : managedContainers()) {
                if (fate(labels(c), self, OwnerLiveness.NO_JUDGE) == Fate.OWN) {
                    ids.add(c.getId());
                }
            }
        } catch (RuntimeException e) {
            log.warn("cannot list containers to clean up: {}", e.getMessage());
        }
        ids.parallelStream().forEach(removal::now);
    }

    /** Removes this JVM's containers when it exits without closing the backend (see {@link #removeOwn}). */
    void removeOwnAtExit(Supplier<Collection<String>> known) {
        Thread hook = new Thread(() -> removeOwn(known.get()), "agentexec-docker-cleanup");
        Runtime.getRuntime().addShutdownHook(hook);
        shutdownHook = Optional.of(hook);
    }

    /** Unregisters the shutdown hook: the backend closed, and removed its containers itself. */
    @Override
    public void close() {
        shutdownHook.ifPresent(hook -> {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // already shutting down
            }
        });
        shutdownHook = Optional.empty();
    }

    private static Map<String, String> labels(Container c) {
        return c.getLabels() == null ? Map.of() : c.getLabels();
    }
}
