package io.agentexec.sandbox.docker;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.exception.NotFoundException;
import com.github.dockerjava.api.model.HostConfig;
import com.github.dockerjava.api.model.Mount;
import com.github.dockerjava.api.model.MountType;
import io.agentexec.sandbox.agent.AgentBinary;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * The agent reaches containers through a read-only named volume, filled once per agent build (the volume's name holds
 * the binary's hash): it works for any image and for remote daemons, and a read-only root filesystem forbids copying
 * into the container itself. The volume outlives this JVM on purpose: the next one with the same agent reuses it.
 */
final class AgentVolume {
    /** The agent's mode in the volume: executable by the sandbox's user, writable by nobody. */
    private static final int AGENT_MODE = 0555;
    /** Characters of the agent's SHA-256 in the volume's name. */
    private static final int HASH_CHARS = 16;

    private final DockerClient client;
    private final AgentBinary agent;
    private final ContainerRemoval removal;
    private final String owner;
    private volatile boolean filled;

    /** @param owner this JVM's owner label, on the helper container that fills the volume */
    AgentVolume(DockerClient client, AgentBinary agent, ContainerRemoval removal, String owner) {
        this.client = client;
        this.agent = agent;
        this.removal = removal;
        this.owner = owner;
    }

    String name() {
        return "agentexec-agent-" + agent.sha256().substring(0, HASH_CHARS);
    }

    /**
     * The volume's name, once it holds the agent: made and filled on first use, through a helper container of
     * {@code image} (any image: the helper never starts, it only gives the archive endpoint a place to copy to).
     */
    synchronized String ensure(String image) {
        String name = name();
        if (filled) {
            return name;
        }
        boolean exists;
        try {
            client.inspectVolumeCmd(name).exec();
            exists = true;
        } catch (NotFoundException e) {
            exists = false;
        }
        if (!exists) {
            client.createVolumeCmd().withName(name).withLabels(Map.of(ContainerSpec.MANAGED_LABEL, "true")).exec();
            String helper;
            try {
                helper = client.createContainerCmd(image)
                        .withEntrypoint("/nonexistent")
                        .withLabels(Map.of(ContainerSpec.MANAGED_LABEL, "true", ContainerOwner.LABEL, owner))
                        .withHostConfig(HostConfig.newHostConfig().withNetworkMode("none").withMounts(List.of(
                                new Mount().withType(MountType.VOLUME).withSource(name)
                                        .withTarget(ContainerSpec.AGENT_DIR))))
                        .exec().getId();
            } catch (NotFoundException e) {
                client.removeVolumeCmd(name).exec();
                throw new SandboxUnavailableException("image " + image + " is not present; build it with images/build.sh"
                        + " or pull it from a registry", e);
            }
            try {
                client.copyArchiveToContainerCmd(helper).withRemotePath(ContainerSpec.AGENT_DIR)
                        .withTarInputStream(new ByteArrayInputStream(tarOf(ContainerSpec.AGENT_FILE, agent.content())))
                        .exec();
            } finally {
                removal.now(helper);
            }
        }
        filled = true;
        return name;
    }

    /** A one-file tar archive (POSIX ustar), as Docker's archive endpoint takes it. */
    static byte[] tarOf(String name, byte[] content) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (TarArchiveOutputStream tar = new TarArchiveOutputStream(out)) {
            TarArchiveEntry entry = new TarArchiveEntry(name);
            entry.setMode(AGENT_MODE);
            entry.setSize(content.length);
            entry.setModTime(FileTime.from(Instant.now()));
            // Owned by root in the volume (numeric ids 0); no name of this host's user in it.
            entry.setUserName("");
            entry.setGroupName("");
            tar.putArchiveEntry(entry);
            tar.write(content);
            tar.closeArchiveEntry();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot build the agent's archive", e);
        }
        return out.toByteArray();
    }
}
