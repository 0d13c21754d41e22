package io.agentexec.sandbox.docker;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.agentexec.sandbox.agent.AgentBinary;
import java.io.ByteArrayInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.junit.jupiter.api.Test;

/** The archive the agent reaches its volume in (Docker's archive endpoint unpacks it). */
class AgentVolumeTest {
    @Test
    void theAgentsArchiveHoldsOneExecutableFileOwnedByRoot() throws Exception {
        byte[] agent = AgentBinary.load().content();
        byte[] tar = AgentVolume.tarOf("agentexec-agent", agent);
        assertEquals(0, tar.length % 512, "tar records are 512 bytes");
        try (TarArchiveInputStream in = new TarArchiveInputStream(new ByteArrayInputStream(tar))) {
            TarArchiveEntry entry = in.getNextEntry();
            assertEquals("agentexec-agent", entry.getName());
            assertEquals(0555, entry.getMode(), "executable by the sandbox's user, writable by nobody");
            assertEquals(0L, entry.getLongUserId());
            assertEquals(0L, entry.getLongGroupId());
            assertEquals("", entry.getUserName(), "no name of this host's user in the volume");
            assertEquals(agent.length, entry.getSize());
            assertArrayEquals(agent, in.readAllBytes());
            assertNull(in.getNextEntry());
        }
    }
}
