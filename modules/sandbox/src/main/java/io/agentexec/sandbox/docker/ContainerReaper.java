package io.agentexec.sandbox.docker;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.model.Container;
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
 * Finds the sandbox containers nobody will remove (as Testcontainers' ResourceReaper does for its own): at start the
 * leftovers of JVMs on this host that no longer run, and at this JVM's end (its close, or the shutdown hook when it
 * exits without closing) its own. Containers are told apart by the owner label {@link ContainerOwner} puts on them;
 * other hosts' containers are never touched (their JVMs may well be alive).
 */
final class ContainerReaper implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(ContainerReaper.class);

    /** What becomes of a managed container, by its owner label. */
    enum Fate {
        /** Its owner is a JVM of this host that no longer runs, or it has no readable owner: removed at start. */
        ORPHAN,
        /** This JVM's: removed when it closes or exits. */
        OWN,
        /** A live JVM's, or another host's: left alone. */
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

    /** The decision, from the owner label alone (and whether that owner's process still runs on this host). */
    static Fate fate(String ownerLabel, ContainerOwner self) {
        Optional<ContainerOwner> owner = ContainerOwner.parse(ownerLabel);
        if (owner.isEmpty()) {
            return Fate.ORPHAN;
        }
        if (owner.get().equals(self)) {
            return Fate.OWN;
        }
        return owner.get().isDeadOnThisHost() ? Fate.ORPHAN : Fate.OTHERS;
    }

    /** Removes managed containers whose owning JVM on this host has exited; returns how many. */
    int reapOrphans() {
        int removed = 0;
        for (Container c : managedContainers()) {
            if (fate(ownerLabel(c), self) == Fate.ORPHAN) {
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
                if (fate(ownerLabel(c), self) == Fate.OWN) {
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

    private static String ownerLabel(Container c) {
        return c.getLabels() == null ? null : c.getLabels().get(ContainerOwner.LABEL);
    }
}
