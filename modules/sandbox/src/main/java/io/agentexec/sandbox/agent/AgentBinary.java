package io.agentexec.sandbox.agent;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/** The static agent binary built with this module, installed in a private directory under a name holding its hash. */
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

    /**
     * Installs the binary in the private runtime {@code directory} and returns its path, verified: the directory
     * is checked (see {@link RuntimeDirectory}) and the file must be a regular file owned by this JVM's user,
     * writable by nobody else, with this binary's SHA-256; anything else under its name is replaced. Call it before
     * each use, not once: what is executed is what was verified a moment before.
     */
    public Path installIn(Path directory) {
        Path dir = RuntimeDirectory.ensurePrivate(directory);
        Path target = dir.resolve("agentexec-agent-" + sha256.substring(0, 16));
        try {
            if (!verified(target)) {
                Path tmp = Files.createTempFile(dir, "agent", ".tmp"); // O_EXCL, random name, mode 0600
                try {
                    Files.write(tmp, content);
                    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("r-x------"));
                    Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } finally {
                    Files.deleteIfExists(tmp);
                }
                if (!verified(target)) {
                    throw new SecurityException("the agent binary written to " + target + " does not verify");
                }
            }
            return target;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot install the agent binary in " + dir, e);
        }
    }

    private boolean verified(Path file) throws IOException {
        if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)
                || RuntimeDirectory.uid(file) != RuntimeDirectory.effectiveUid()
                || (RuntimeDirectory.mode(file) & 0022) != 0
                || Files.size(file) != content.length) {
            return false;
        }
        try (InputStream in = Files.newInputStream(file, LinkOption.NOFOLLOW_LINKS)) {
            MessageDigest digest = MessageDigest.getInstance("SHA-256");
            byte[] buf = new byte[65536];
            int n;
            while ((n = in.read(buf)) > 0) {
                digest.update(buf, 0, n);
            }
            return MessageDigest.isEqual(digest.digest(), HexFormat.of().parseHex(sha256));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
