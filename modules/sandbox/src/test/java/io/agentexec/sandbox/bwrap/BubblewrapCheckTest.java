package io.agentexec.sandbox.bwrap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The check that bwrap can create its namespaces: a failure that passes (a host short of processes for a moment) does
 * not take the backend away, and a lasting one says what bwrap said. A stand-in executable plays bwrap: what is checked
 * is the check, not the kernel.
 */
class BubblewrapCheckTest {
    @TempDir
    Path dir;

    private Path standIn(String body) throws Exception {
        Path script = dir.resolve("bwrap");
        Files.writeString(script, "#!/bin/sh\n" + body + "\n");
        Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwx------"));
        return script;
    }

    @Test
    void aFailureThatPassesBeforeTheLastAttemptLeavesBwrapAvailable() throws Exception {
        Path count = dir.resolve("count");
        Path bwrap = standIn("n=$(cat " + count + " 2>/dev/null || echo 0); echo $((n+1)) > " + count + "\n"
                + "if [ $n -eq 0 ]; then echo 'bwrap: Creating new namespace failed: Resource temporarily unavailable'; "
                + "exit 1; fi\nexit 0");
        assertEquals(Optional.empty(), BubblewrapBackend.unavailableBecause(bwrap.toString()));
        assertEquals("2", Files.readString(count).strip(), "asked again once");
    }

    @Test
    void aLastingFailureSaysWhatBwrapSaid() throws Exception {
        Path bwrap = standIn("echo 'bwrap: No permissions to create new namespace'; exit 1");
        Optional<String> why = BubblewrapBackend.unavailableBecause(bwrap.toString());
        assertTrue(why.isPresent());
        assertTrue(why.get().contains("exit 1: bwrap: No permissions to create new namespace"), why.get());
    }

    @Test
    void aMissingExecutableIsUnavailableAtOnce() {
        Optional<String> why = BubblewrapBackend.unavailableBecause(dir.resolve("no-such-bwrap").toString());
        assertTrue(why.isPresent());
        assertTrue(why.get().contains("no-such-bwrap"), why.get());
    }
}
