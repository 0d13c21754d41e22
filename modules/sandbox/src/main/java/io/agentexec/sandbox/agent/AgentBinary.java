package io.agentexec.sandbox.agent;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** The static agent binary built with this module, unpacked once to a file named by its hash. */
public final class AgentBinary {
    private static final String RESOURCE = "agentexec-agent-linux-amd64";

    private final byte[] content;
    private final String sha256;

    private AgentBinary(byte[] content) {
        this.content = content;
        try {
            this.sha256 = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(content));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    public static AgentBinary load() {
        try (InputStream in = AgentBinary.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("agent binary " + RESOURCE + " is missing from the classpath (built by gcc -static during mvn package)");
            }
            return new AgentBinary(in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    public byte[] content() {
        return content.clone();
    }

    public String sha256() {
        return sha256;
    }

    /** Unpacks the binary into {@code directory} (idempotent) and returns its path. */
    public Path unpackTo(Path directory) {
        try {
            Files.createDirectories(directory);
            Path target = directory.resolve("agentexec-agent-" + sha256.substring(0, 16));
            if (!Files.isExecutable(target) || Files.size(target) != content.length) {
                Path tmp = Files.createTempFile(directory, "agent", ".tmp");
                Files.write(tmp, content);
                Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("r-xr-xr-x"));
                Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            }
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot unpack the agent binary into " + directory, e);
        }
    }
}
