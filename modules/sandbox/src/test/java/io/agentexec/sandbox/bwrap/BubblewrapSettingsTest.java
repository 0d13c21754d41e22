package io.agentexec.sandbox.bwrap;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class BubblewrapSettingsTest {
    private static BubblewrapSettings withHostUser(String hostUser) {
        return new BubblewrapSettings("bwrap", List.of(), Path.of("/sys/fs/cgroup"), "agentexec", 1 << 20, 1 << 20,
                "/workspace", "65534:65534", hostUser, Duration.ofSeconds(10), Path.of("/tmp/agentexec-runtime"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"0:0", "00:65534", "65534:0", "0", "root", "65534", "nobody:nogroup", ""})
    void theHostUserMustBeNumericAndNeverRoot(String hostUser) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> withHostUser(hostUser));
        assertTrue(e.getMessage().contains("agentexec.sandbox.bwrap.host-user"), e::getMessage);
    }

    @Test
    void anUnprivilegedHostUserIsAccepted() {
        withHostUser("65534:65534");
        withHostUser("100000:100000");
    }

    @Test
    void disableUsernsNeedsBubblewrap080() {
        int[] since = {0, 8, 0};
        assertTrue(BubblewrapBackend.atLeast("bubblewrap 0.8.0", since));
        assertTrue(BubblewrapBackend.atLeast("bubblewrap 0.11.0", since));
        assertTrue(BubblewrapBackend.atLeast("bubblewrap 1.0.0", since));
        assertFalse(BubblewrapBackend.atLeast("bubblewrap 0.7.9", since));
        assertFalse(BubblewrapBackend.atLeast("bubblewrap 0.4.1", since));
        assertFalse(BubblewrapBackend.atLeast("bwrap: command not found", since));
    }
}
