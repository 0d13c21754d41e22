package io.agentexec.sandbox.docker;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.agentexec.sandbox.docker.ContainerReaper.Fate;
import java.time.Instant;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/**
 * The reaper's decision from a container's owner label, against real processes of this host: this JVM, its parent
 * (alive), a child that has exited, and a pid no process has.
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
}
