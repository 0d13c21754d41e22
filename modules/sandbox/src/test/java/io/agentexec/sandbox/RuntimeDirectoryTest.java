package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.agent.AgentBinary;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Verdict;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The directory the bwrap and unsafe-local backends unpack the agent into: another local user must not be able to
 * make this (root) JVM run a program of theirs by planting it there (security review, finding 4).
 */
class RuntimeDirectoryTest {
    private static final int NOBODY = 65534;
    private static final AgentBinary AGENT = AgentBinary.load();

    private Path base;
    private Path marker;

    @BeforeEach
    void privateBase() throws IOException {
        base = Files.createTempDirectory("agentexec-runtime-test");
        marker = base.resolve("planted-program-ran");
    }

    @AfterEach
    void removeBase() throws IOException {
        try (Stream<Path> all = Files.walk(base)) {
            all.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        }
    }

    private Path agentFile(Path runtime) {
        return runtime.resolve("agentexec-agent-" + AGENT.sha256().substring(0, 16));
    }

    /** A shell script of exactly the agent's size that leaves the marker behind: what a local user would plant. */
    private void plant(Path file, int owner) throws IOException {
        byte[] script = new byte[AGENT.content().length];
        Arrays.fill(script, (byte) '#');
        byte[] head = ("#!/bin/sh\ntouch '" + marker + "'\nexit 1\n").getBytes(StandardCharsets.UTF_8);
        System.arraycopy(head, 0, script, 0, head.length);
        script[script.length - 1] = '\n';
        Files.write(file, script);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
        Files.setAttribute(file, "unix:uid", owner, LinkOption.NOFOLLOW_LINKS);
    }

    /** Starts an engine on {@code runtime} and runs a block: empty when it ran, else the error it gave. */
    private static Optional<String> tryToRun(BackendChoice backend, Path runtime) {
        EngineSettings settings = EngineSettings.fromConfig(ConfigFactory.parseMap(
                Map.of("agentexec.sandbox.runtime-directory", runtime.toString())).withFallback(ConfigFactory.load()))
                .withBackend(backend);
        try (SandboxEngine engine = SandboxEngine.start(settings)) {
            ExecutionResult r = engine.execute(ExecutionRequest.of("bash", "echo ran", engine.defaultLimits()));
            return r.verdict() == Verdict.OK && r.stdout().equals("ran\n") ? Optional.empty() : Optional.of(r.message());
        } catch (RuntimeException e) {
            return Optional.of(String.valueOf(e.getMessage()));
        }
    }

    @ParameterizedTest
    @EnumSource(value = BackendChoice.class, names = {"BWRAP", "UNSAFE_LOCAL"})
    void aDirectoryOwnedByAnotherUserIsRefusedAndItsPlantNeverRuns(BackendChoice backend) throws IOException {
        Path runtime = Files.createDirectory(base.resolve("runtime"));
        Files.setPosixFilePermissions(runtime, PosixFilePermissions.fromString("rwxr-xr-x"));
        plant(agentFile(runtime), NOBODY);
        Files.setAttribute(runtime, "unix:uid", NOBODY);
        Optional<String> error = tryToRun(backend, runtime);
        assertFalse(Files.exists(marker), "the engine ran the program planted in " + runtime);
        assertTrue(error.isPresent(), "the engine used a directory owned by uid " + NOBODY);
        assertTrue(error.get().contains(runtime.toString()) && error.get().contains("owned by uid " + NOBODY), error.get());
    }

    @ParameterizedTest
    @EnumSource(value = BackendChoice.class, names = {"BWRAP", "UNSAFE_LOCAL"})
    void aWorldWritableDirectoryIsRefused(BackendChoice backend) throws IOException {
        Path runtime = Files.createDirectory(base.resolve("runtime"));
        Files.setPosixFilePermissions(runtime, PosixFilePermissions.fromString("rwxrwxrwx"));
        plant(agentFile(runtime), NOBODY);
        Optional<String> error = tryToRun(backend, runtime);
        assertFalse(Files.exists(marker), "the engine ran the program planted in " + runtime);
        assertTrue(error.isPresent(), "the engine used a world-writable directory");
        assertTrue(error.get().contains(runtime.toString()) && error.get().contains("writable"), error.get());
    }

    @ParameterizedTest
    @EnumSource(value = BackendChoice.class, names = {"BWRAP", "UNSAFE_LOCAL"})
    void aSymlinkInPlaceOfTheDirectoryIsRefused(BackendChoice backend) throws IOException {
        Path hostile = Files.createDirectory(base.resolve("hostile"));
        plant(agentFile(hostile), NOBODY);
        Files.setAttribute(hostile, "unix:uid", NOBODY);
        Path runtime = Files.createSymbolicLink(base.resolve("runtime"), hostile);
        Optional<String> error = tryToRun(backend, runtime);
        assertFalse(Files.exists(marker), "the engine ran the program planted behind " + runtime);
        assertTrue(error.isPresent() && error.get().contains("symlink"), error::toString);
    }

    @ParameterizedTest
    @EnumSource(value = BackendChoice.class, names = {"BWRAP", "UNSAFE_LOCAL"})
    void aForeignFileInOurPrivateDirectoryIsReplacedNotRun(BackendChoice backend) throws Exception {
        Path runtime = Files.createDirectory(base.resolve("runtime"));
        Files.setPosixFilePermissions(runtime, PosixFilePermissions.fromString("rwx------"));
        plant(agentFile(runtime), NOBODY);
        assertEquals(Optional.empty(), tryToRun(backend, runtime));
        assertFalse(Files.exists(marker), "the engine ran the program planted in " + runtime);
        assertArrayEquals(MessageDigest.getInstance("SHA-256").digest(AGENT.content()),
                MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(agentFile(runtime))));
        assertEquals(0, Files.getAttribute(agentFile(runtime), "unix:uid", LinkOption.NOFOLLOW_LINKS));
    }

    @ParameterizedTest
    @EnumSource(value = BackendChoice.class, names = {"BWRAP", "UNSAFE_LOCAL"})
    void aMissingDirectoryIsCreatedPrivate(BackendChoice backend) throws IOException {
        Path runtime = base.resolve("new").resolve("runtime");
        assertEquals(Optional.empty(), tryToRun(backend, runtime));
        assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(runtime, LinkOption.NOFOLLOW_LINKS)));
        assertEquals(0, Files.getAttribute(runtime, "unix:uid", LinkOption.NOFOLLOW_LINKS));
    }

    @ParameterizedTest
    @EnumSource(value = BackendChoice.class, names = {"BWRAP", "UNSAFE_LOCAL"})
    void theBinaryIsVerifiedBeforeEachUse(BackendChoice backend) throws IOException {
        Path runtime = Files.createDirectory(base.resolve("runtime"));
        Files.setPosixFilePermissions(runtime, PosixFilePermissions.fromString("rwx------"));
        EngineSettings settings = EngineSettings.fromConfig(ConfigFactory.parseMap(
                Map.of("agentexec.sandbox.runtime-directory", runtime.toString())).withFallback(ConfigFactory.load()))
                .withBackend(backend);
        try (SandboxEngine engine = SandboxEngine.start(settings)) {
            assertEquals("first\n", engine.execute(ExecutionRequest.of("bash", "echo first", engine.defaultLimits())).stdout());
            Path unpacked = agentFile(runtime);
            Files.setPosixFilePermissions(unpacked, PosixFilePermissions.fromString("rwx------"));
            plant(unpacked, 0);
            ExecutionResult second = engine.execute(ExecutionRequest.of("bash", "echo second", engine.defaultLimits()));
            assertFalse(Files.exists(marker), "the engine ran a binary that no longer has the agent's hash");
            assertEquals("second\n", second.stdout(), second::toString);
        }
    }
}
