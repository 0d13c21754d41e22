package io.agentexec.sandbox.agent;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * The directory that programs this JVM runs are unpacked into (the agent binary): private to the JVM's user,
 * because anyone who can write there chooses what the JVM (often root) executes. It is created with mode 0700
 * (mkdir, which fails rather than follow or reuse anything planted), and an existing one is refused unless it is a
 * real directory owned by this JVM's uid that nobody else may write, below ancestors that nobody else can rename it
 * out of.
 */
public final class RuntimeDirectory {
    private static final String SETTING = "agentexec.sandbox.runtime-directory (AGENTEXEC_RUNTIME_DIR)";
    private static final int GROUP_OR_OTHER_WRITE = 0022;
    private static final int GROUP_OR_OTHER_ANY = 0077;
    private static final int STICKY = 01000;
    private static final int ROOT = 0;

    private RuntimeDirectory() {
    }

    /** Creates {@code directory} private, or checks that the existing one is; returns its absolute path. */
    public static Path ensurePrivate(Path directory) {
        Path dir = directory.toAbsolutePath().normalize();
        try {
            Files.createDirectories(dir.getParent());
            try {
                Files.createDirectory(dir, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
            } catch (FileAlreadyExistsException exists) {
                // checked below like any other existing directory
            }
            int me = effectiveUid();
            if (Files.isSymbolicLink(dir)) {
                throw refuse(dir, "is a symlink");
            }
            if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
                throw refuse(dir, "is not a directory");
            }
            int owner = uid(dir);
            if (owner != me) {
                throw refuse(dir, "is owned by uid " + owner + ", not by this JVM's uid " + me);
            }
            int mode = mode(dir);
            if ((mode & GROUP_OR_OTHER_WRITE) != 0) {
                throw refuse(dir, "is group- or world-writable (mode " + Integer.toOctalString(mode & 07777) + ")");
            }
            if ((mode & GROUP_OR_OTHER_ANY) != 0) {
                // Ours and not writable by others: safe to tighten to what we would have created.
                Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
            }
            for (Path ancestor = dir.getParent(); ancestor != null; ancestor = ancestor.getParent()) {
                int ancestorOwner = uid(ancestor);
                int ancestorMode = mode(ancestor);
                if (ancestorOwner != me && ancestorOwner != ROOT) {
                    throw refuse(dir, "lies below " + ancestor + ", owned by uid " + ancestorOwner
                            + ", who could replace it");
                }
                if ((ancestorMode & GROUP_OR_OTHER_WRITE) != 0 && (ancestorMode & STICKY) == 0) {
                    throw refuse(dir, "lies below " + ancestor + ", which others may write without the sticky bit "
                            + "(mode " + Integer.toOctalString(ancestorMode & 07777) + "), so they could replace it");
                }
            }
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot prepare the runtime directory " + dir + " (" + SETTING + ")", e);
        }
    }

    /** The uid this JVM acts as (files it creates are owned by it). */
    public static int effectiveUid() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith("Uid:")) {
                    return Integer.parseInt(line.substring(4).trim().split("\\s+")[1]);
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read this process's uid from /proc/self/status", e);
        }
        throw new IllegalStateException("/proc/self/status has no Uid line");
    }

    static int uid(Path p) throws IOException {
        return (Integer) Files.getAttribute(p, "unix:uid", LinkOption.NOFOLLOW_LINKS);
    }

    static int mode(Path p) throws IOException {
        return (Integer) Files.getAttribute(p, "unix:mode", LinkOption.NOFOLLOW_LINKS);
    }

    private static SecurityException refuse(Path dir, String why) {
        return new SecurityException("runtime directory " + dir + " " + why + ": refusing to run programs from it ("
                + SETTING + " must name a directory private to this JVM's user, or a path where it can create one)");
    }
}
