package io.agentexec.sandbox.options;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.sandbox.model.SandboxOptions;
import io.agentexec.sandbox.policy.PolicyViolationException;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** Options given directly (the cluster's API, a worker, the backend where they take effect) meet the run args' rules. */
class OptionRulesTest {
    private static final SandboxOptions DEFAULTS = SandboxOptions.hardened();
    private static final OptionRules RULES = new OptionRules(DEFAULTS, Set.of("bridge"), Set.of("runsc"));

    private static String refusal(SandboxOptions options) {
        return assertThrows(PolicyViolationException.class, () -> RULES.check(options),
                () -> options + " was accepted").getMessage();
    }

    @Test
    void theDefaultsAndWhatTheOperatorAllowsPass() {
        RULES.check(DEFAULTS);
        RULES.check(DEFAULTS.withNetworkMode("bridge").withRuntime(Optional.of("runsc"))
                .withTmpfs("/scratch", "rw,size=1m").withNamePrefix(Optional.of("ag2_code_executor"))
                .withCapDrop(List.of("ALL", "NET_RAW")));
        assertEquals("1000:1000", RULES.checked(DEFAULTS.withUser("1000")).user(), "a lone uid is its own gid");
    }

    @Test
    void everythingWeakerThanTheDefaultsIsRefusedNamingTheRule() {
        assertTrue(refusal(DEFAULTS.withNetworkMode("host")).contains("network host is not allowed"));
        assertTrue(refusal(DEFAULTS.withRuntime(Optional.of("runc"))).contains("only the configured runtime"));
        assertTrue(refusal(DEFAULTS.withUser("0:0")).contains("root"));
        assertTrue(refusal(DEFAULTS.withUser("+0")).contains("root"));
        assertTrue(refusal(DEFAULTS.withReadOnlyRootFilesystem(false)).contains("writable root"));
        assertTrue(refusal(DEFAULTS.withNoNewPrivileges(false)).contains("no-new-privileges"));
        assertTrue(refusal(DEFAULTS.withCapDrop(List.of("NET_RAW"))).contains("keeps capabilities"));
        assertTrue(refusal(DEFAULTS.withTmpfs("relative", "rw")).contains("absolute path"));
        assertTrue(refusal(DEFAULTS.withTmpfs("/", "rw")).contains("absolute path"));
        assertTrue(assertThrows(RuntimeException.class, () -> RULES.check(DEFAULTS.withNamePrefix(Optional.of("bad name!"))))
                .getMessage().contains("docker_container_name"));
        assertTrue(refusal(DEFAULTS.withNetworkMode("host")).startsWith("docker options: "), "the message names what it checks");
    }

    @Test
    void theRunArgsAndTheDirectCheckAgreeOnRuntimes() {
        OptionRules gvisor = new OptionRules(DEFAULTS.withRuntime(Optional.of("runsc")), Set.of(), Set.of());
        assertEquals(Optional.empty(), gvisor.runtimeProblem(Optional.of("runsc")));
        assertTrue(gvisor.runtimeProblem(Optional.empty()).orElseThrow().contains("the daemon's default runtime"));
        assertEquals(List.of(Optional.of("runsc")), gvisor.usableRuntimes());
        assertEquals(List.of(Optional.empty(), Optional.of("runsc")), RULES.usableRuntimes());
    }
}
