package io.agentexec.sandbox.docker;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.agentexec.sandbox.backend.NodeOwner;
import io.agentexec.sandbox.backend.OwnerLiveness;
import io.agentexec.sandbox.docker.ContainerReaper.Fate;
import java.time.Instant;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * The reaper's decision from a container's owner labels, against real processes of this host: this JVM, its parent
 * (alive), a child that has exited, and a pid no process has; and for a cluster node's engine, against what the
 * cluster's judge says of the owning node (the two-node runs with real Docker are in the cluster module's
 * ContainerReaperClusterTest).
 */
class ContainerReaperTest {
    private static final ContainerOwner SELF = ContainerOwner.current();

    @Test
    void thisJvmsContainersAreItsOwnNeverOrphans() {
        assertEquals(Fate.OWN, ContainerReaper.fate(SELF.label(), SELF));
    }

    @Test
    void containersOfAJvmOfThisHostThatExitedAreOrphans() throws Exception {
        Process child = new ProcessBuilder("true").start();
        long started = child.info().startInstant().map(Instant::toEpochMilli).orElse(0L);
        child.waitFor();
        String label = new ContainerOwner(SELF.host(), child.pid(), started).label();
        assertEquals(Fate.ORPHAN, ContainerReaper.fate(label, SELF));
        assertEquals(Fate.ORPHAN, ContainerReaper.fate(SELF.host() + "/999999999/1", SELF), "no such pid");
    }

    @Test
    void aPidReusedByAnotherProcessDoesNotKeepAnOrphanAlive() {
        // This JVM's pid with another start time: the container's owner was an earlier process with the same pid.
        String label = new ContainerOwner(SELF.host(), SELF.pid(), SELF.startMillis() - 1).label();
        assertEquals(Fate.ORPHAN, ContainerReaper.fate(label, SELF));
    }

    @Test
    void aLiveProcessesAndOtherHostsContainersAreLeftAlone() {
        ProcessHandle parent = ProcessHandle.current().parent().orElseThrow();
        Optional<Instant> parentStart = parent.info().startInstant();
        if (parentStart.isPresent()) {
            String label = new ContainerOwner(SELF.host(), parent.pid(), parentStart.get().toEpochMilli()).label();
            assertEquals(Fate.OTHERS, ContainerReaper.fate(label, SELF), "the parent JVM/shell still runs");
        }
        assertEquals(Fate.OTHERS, ContainerReaper.fate("some-other-node/1/1", SELF), "its JVM may well be alive");
    }

    @Test
    void aContainerWithoutAReadableOwnerIsAnOrphan() {
        assertEquals(Fate.ORPHAN, ContainerReaper.fate(null, SELF));
        assertEquals(Fate.ORPHAN, ContainerReaper.fate("", SELF));
        assertEquals(Fate.ORPHAN, ContainerReaper.fate("host/not-a-pid/1", SELF));
    }

    private static final NodeOwner ME = new NodeOwner("pekko://agentexec@127.0.0.1:25520", 11, "me");
    private static final ContainerOwner NODE_SELF = ContainerOwner.current(Optional.of(ME));
    /** Another host's JVM, working for another node: only the cluster can say whether it lives. */
    private static final ContainerOwner ELSEWHERE = new ContainerOwner("some-other-node", 1, 1,
            Optional.of(new NodeOwner("pekko://agentexec@10.0.0.9:25520", 22, "w9")));

    private static OwnerLiveness saying(OwnerLiveness.Verdict verdict) {
        return owner -> verdict;
    }

    @Test
    void aNodesOwnContainersAreItsOwn() {
        assertEquals(Fate.OWN, ContainerReaper.fate(NODE_SELF.labels(), NODE_SELF, saying(OwnerLiveness.Verdict.GONE)));
    }

    @Test
    void anEarlierIncarnationOfThisNodeLeftOrphansWhateverItsHost() {
        ContainerOwner earlier = new ContainerOwner("a-host-long-gone", 5, 5,
                Optional.of(new NodeOwner(ME.address(), ME.uid() + 1, "me")));
        assertEquals(Fate.ORPHAN, ContainerReaper.fate(earlier.labels(), NODE_SELF, OwnerLiveness.NO_JUDGE));
    }

    @Test
    void aNodeTheClusterSaysIsGoneLeftOrphansWhateverItsHost() {
        assertEquals(Fate.ORPHAN, ContainerReaper.fate(ELSEWHERE.labels(), NODE_SELF, saying(OwnerLiveness.Verdict.GONE)));
        assertEquals(Fate.OTHERS, ContainerReaper.fate(ELSEWHERE.labels(), NODE_SELF, saying(OwnerLiveness.Verdict.ALIVE)));
        assertEquals(Fate.OTHERS, ContainerReaper.fate(ELSEWHERE.labels(), NODE_SELF, saying(OwnerLiveness.Verdict.UNKNOWN)),
                "another cluster's node, or one not judged yet, is left alone");
        assertEquals(Fate.OTHERS, ContainerReaper.fate(ELSEWHERE.labels(), SELF, OwnerLiveness.NO_JUDGE),
                "an engine of no cluster judges no node");
    }

    @Test
    void anotherEngineOfThisJvmKeepsItsContainers() {
        ContainerOwner sibling = ContainerOwner.current(Optional.of(new NodeOwner("pekko://agentexec@127.0.0.1:25521", 33, "sib")));
        assertEquals(Fate.OTHERS, ContainerReaper.fate(sibling.labels(), NODE_SELF, saying(OwnerLiveness.Verdict.GONE)),
                "a node of this JVM that left removes its own containers when it closes");
        assertEquals(Fate.OTHERS, ContainerReaper.fate(sibling.labels(), SELF, OwnerLiveness.NO_JUDGE));
        assertEquals(Fate.OTHERS, ContainerReaper.fate(SELF.labels(), NODE_SELF, OwnerLiveness.NO_JUDGE));
    }

    @Test
    void unreadableNodeLabelsFallBackToTheJvmsOwner() {
        Map<String, String> labels = new java.util.HashMap<>(ELSEWHERE.labels());
        labels.put(ContainerOwner.NODE_UID_LABEL, "not-a-uid");
        assertEquals(Fate.OTHERS, ContainerReaper.fate(labels, NODE_SELF, saying(OwnerLiveness.Verdict.GONE)));
    }
}
