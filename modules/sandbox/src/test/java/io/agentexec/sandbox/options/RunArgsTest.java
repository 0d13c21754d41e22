package io.agentexec.sandbox.options;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class RunArgsTest {
    private static final Limits LIMITS = new Limits(Duration.ofSeconds(30), 1L << 30, 1.0, 128, 1 << 20, 64L << 20);
    private static final SandboxOptions BASE = SandboxOptions.hardened().withReadOnlyRootFilesystem(false);

    private static RunArgs.Applied apply(String... args) {
        return RunArgs.apply(List.of(args), BASE, LIMITS, new OptionRules(BASE, Set.of("none"), Set.of("runsc")));
    }

    @Test
    void theSeedsSecureArgsBecomeTypedSettings() {
        RunArgs.Applied a = apply("--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", "--memory", "512m",
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
        RunArgs.Applied a = apply("--memory=256m", "--pids-limit=32", "--tmpfs=/scratch:rw,size=8m", "--user", "1000:1000",
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

    /**
     * Every spelling Docker (Go's Atoi, the image's /etc/passwd, 32-bit setuid) could turn into uid or gid 0 is
     * refused: only plain decimal ids from 1 up. A lone uid gets the same gid (else the image's, or root's group).
     */
    @ParameterizedTest
    @ValueSource(strings = {"0", "00", "000", "+0", "-0", "+1", "-1", "0x1", "0x0", " 1", "1 ", "1\n", "01", "0:0",
            "1:0", "1:00", "0:1", "1:", ":1", ":", "", "1:2:3", "1::2", "root", "nobody", "daemon", "root:root",
            "1000:root", "4294967296", "4294967296:1", "2147483648", "99999999999999999999", "1e3", "\uff11", "1\u0000"})
    void userSpellingsThatCouldBeRootAreRefused(String user) {
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> apply("--user", user),
                () -> "--user '" + user + "' was accepted as " + apply("--user", user).options().user());
        assertTrue(e.getMessage().contains("--user"), e.getMessage());
        assertTrue(e.getMessage().contains("root"), e.getMessage());
        assertThrows(InvalidRequestException.class, () -> apply("--user=" + user));
    }

    @Test
    void numericUsersAreAcceptedAndALoneUidGetsItsOwnGid() {
        assertEquals("1000:1000", apply("--user", "1000").options().user());
        assertEquals("1000:2000", apply("-u", "1000:2000").options().user());
        assertEquals("1:1", apply("--user=1").options().user());
        assertEquals("2147483647:65534", apply("--user", "2147483647:65534").options().user());
    }

    @Test
    void anOperatorMayAllowANetworkOrRuntime() {
        RunArgs.Applied a = RunArgs.apply(List.of("--network", "bridge"), BASE, LIMITS,
                new OptionRules(BASE, Set.of("none", "bridge"), Set.of()));
        assertEquals("bridge", a.options().networkMode());
        assertThrows(InvalidRequestException.class, () -> apply("--runtime", "kata"));
    }

    private static EngineSettings settings(String config) {
        return EngineSettings.fromConfig(ConfigFactory.parseString(config).withFallback(ConfigFactory.load()).resolve());
    }

    private static RunArgs.Applied applyWith(EngineSettings settings, String... args) {
        return RunArgs.apply(List.of(args), LIMITS, settings.optionRules());
    }

    /** A tenant cannot leave gVisor: with runsc configured, only runsc, unless the operator lists more. */
    @Test
    void onlyTheConfiguredRuntimeUnlessTheOperatorListsMore() {
        EngineSettings gvisor = settings("agentexec.sandbox.docker.runtime = runsc");
        for (String other : List.of("runc", "crun", "io.containerd.runc.v2", "kata")) {
            InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> applyWith(gvisor, "--runtime", other),
                    () -> "--runtime " + other + " was accepted while runsc is configured");
            assertTrue(e.getMessage().contains("--runtime " + other), e.getMessage());
            assertTrue(e.getMessage().contains("only the configured runtime (runsc)"), e.getMessage());
            assertTrue(e.getMessage().contains("allowed-runtimes"), e.getMessage());
        }
        assertEquals(Optional.of("runsc"), applyWith(gvisor, "--runtime", "runsc").options().runtime());
        assertEquals(Optional.of("runsc"), applyWith(gvisor).options().runtime(), "no flag keeps the configured runtime");

        EngineSettings daemonDefault = settings("");
        InvalidRequestException e = assertThrows(InvalidRequestException.class, () -> applyWith(daemonDefault, "--runtime", "runc"));
        assertTrue(e.getMessage().contains("the daemon's default"), e.getMessage());

        EngineSettings listed = settings("agentexec.sandbox.docker { runtime = runsc, allowed-runtimes = [crun] }");
        assertEquals(Optional.of("crun"), applyWith(listed, "--runtime", "crun").options().runtime());
        assertThrows(InvalidRequestException.class, () -> applyWith(listed, "--runtime", "runc"));
        // The environment override is one string: AGENTEXEC_DOCKER_ALLOWED_RUNTIMES=runc,crun
        EngineSettings fromEnv = settings("agentexec.sandbox.docker.allowed-runtimes = \"runc, crun\"");
        assertEquals(Set.of("runc", "crun"), fromEnv.docker().allowedRuntimes());
        assertEquals(Optional.of("runc"), applyWith(fromEnv, "--runtime", "runc").options().runtime());
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
