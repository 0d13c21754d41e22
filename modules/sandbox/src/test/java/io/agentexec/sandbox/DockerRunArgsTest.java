package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.sandbox.docker.DockerOptions;
import io.agentexec.sandbox.docker.DockerRunArgs;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class DockerRunArgsTest {
    private static final Limits LIMITS = new Limits(Duration.ofSeconds(30), 1L << 30, 1.0, 128, 1 << 20, 64L << 20);
    private static final DockerOptions BASE = DockerOptions.hardened().withReadOnlyRootFilesystem(false);

    private static DockerRunArgs.Applied apply(String... args) {
        return DockerRunArgs.apply(List.of(args), BASE, LIMITS, Set.of("none"), Set.of("runsc"));
    }

    @Test
    void theSeedsSecureArgsBecomeTypedSettings() {
        DockerRunArgs.Applied a = apply("--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", "--memory", "512m",
                "--cpus", "0.5", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true");
        assertEquals("none", a.options().networkMode());
        assertTrue(a.options().readOnlyRootFilesystem());
        assertTrue(a.options().tmpfs().containsKey("/tmp"));
        assertEquals(512L * 1024 * 1024, a.limits().memoryBytes());
        assertEquals(0.5, a.limits().cpus());
        assertEquals(List.of("ALL"), a.options().capDrop());
        assertTrue(a.options().noNewPrivileges());
    }

    @Test
    void equalsFormsAndOtherSafeFlagsAreUnderstood() {
        DockerRunArgs.Applied a = apply("--memory=256m", "--pids-limit=32", "--tmpfs=/scratch:rw,size=8m", "--user", "1000:1000",
                "--runtime", "runsc", "--name", "ag2_code_executor", "-m", "128m");
        assertEquals(128L * 1024 * 1024, a.limits().memoryBytes());
        assertEquals(32, a.limits().pids());
        assertEquals("rw,size=8m", a.options().tmpfs().get("/scratch"));
        assertEquals("1000:1000", a.options().user());
        assertEquals(Optional.of("runsc"), a.options().runtime());
        assertEquals(Optional.of("ag2_code_executor"), a.options().namePrefix());
    }

    @ParameterizedTest
    @ValueSource(strings = {"--privileged", "--cap-add", "--device", "-v", "--volume", "--mount", "--pid", "--ipc",
            "--userns", "--sysctl", "--volumes-from", "-p", "--oom-kill-disable"})
    void flagsThatWeakenIsolationAreRefusedByName(String flag) {
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> apply(flag, "host"));
        assertTrue(e.getMessage().contains(flag), e.getMessage());
        assertTrue(e.getMessage().contains("weakens isolation"), e.getMessage());
    }

    @Test
    void hostNetworkingAndRootAndUnconfinedProfilesAreRefused() {
        assertTrue(assertThrows(InvalidRequestException.class, () -> apply("--network", "host")).getMessage().contains("--network host"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> apply("--net=bridge")).getMessage().contains("--net bridge"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> apply("--user", "root")).getMessage().contains("root"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> apply("-u", "0:0")).getMessage().contains("root"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> apply("--security-opt", "seccomp=unconfined"))
                .getMessage().contains("seccomp=unconfined"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> apply("--memory-swap", "-1")).getMessage().contains("--memory-swap"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> apply("--pids-limit", "-1")).getMessage().contains("unlimited"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> apply("--read-only=false")).getMessage().contains("--read-only"));
    }

    @Test
    void anOperatorMayAllowANetworkOrRuntime() {
        DockerRunArgs.Applied a = DockerRunArgs.apply(List.of("--network", "bridge"), BASE, LIMITS, Set.of("none", "bridge"), Set.of());
        assertEquals("bridge", a.options().networkMode());
        assertThrows(InvalidRequestException.class, () -> apply("--runtime", "kata"));
    }

    @Test
    void badValuesAndUnknownFlagsAreRefusedClearly() {
        assertTrue(assertThrows(InvalidRequestException.class, () -> apply("--memory")).getMessage().contains("needs a value"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> apply("--memory", "lots")).getMessage().contains("not a size"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> apply("--cpus", "many")).getMessage().contains("--cpus"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> apply("--cpus", "0")).getMessage().contains("cpus"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> apply("--tmpfs", "relative")).getMessage().contains("absolute"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> apply("--name", "bad name!")).getMessage().contains("docker_container_name"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> apply("--frobnicate")).getMessage().contains("unsupported flag --frobnicate"));
        assertFalse(apply().options().readOnlyRootFilesystem(), "no args change nothing");
    }
}
