package io.agentexec.gateway.executions;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.gateway.spi.TenantId;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Execution ids: the start time and, for a run in a sandbox, the sandbox travel in the id. */
class ExecutionRegistryTest {
    private static final Instant NOW = Instant.parse("2026-01-02T03:04:05.678Z");
    private final ExecutionRegistry registry = new ExecutionRegistry(Clock.fixed(NOW, ZoneOffset.UTC), Duration.ofMinutes(1), 8);
    private final TenantId alice = new TenantId("alice");

    @Test
    void aOneOffsIdNamesNoSandbox() {
        String id = registry.register(alice).id();
        assertTrue(id.matches("exe-[0-9a-f-]{36}"), id);
        assertEquals(Optional.empty(), ExecutionRegistry.sandboxOf(id));
        assertEquals(Optional.of(NOW), ExecutionRegistry.startedAt(id));
    }

    @Test
    void aRunInASandboxNamesItsSandbox() {
        String sandbox = "sbx-3f1c2a4e-0000-4000-8000-000000000001";
        String id = registry.register(alice, Optional.of(sandbox)).id();
        assertEquals(id.substring(0, 40) + "." + sandbox, id);
        assertEquals(Optional.of(sandbox), ExecutionRegistry.sandboxOf(id));
        assertEquals(Optional.of(NOW), ExecutionRegistry.startedAt(id));
        assertEquals(alice, registry.find(alice, id).orElseThrow().tenant());
    }

    @Test
    void aSandboxIdTooLongForTheClustersKeyIsNotNamed() {
        String id = registry.register(alice, Optional.of("s".repeat(120))).id();
        assertEquals(Optional.empty(), ExecutionRegistry.sandboxOf(id));
    }

    /**
     * Ended executions leave after the retention, but the registry is not read whole on every registration (a node's
     * CPU went 7% into that at 30 runs/s): at most one sweep per hundredth of the retention.
     */
    @Test
    void endedExecutionsAreSweptOutAfterTheRetentionAtMostOncePerHundredthOfIt() {
        Instant[] now = {Instant.now()};
        Clock moving = new Clock() {
            @Override
            public ZoneOffset getZone() {
                return ZoneOffset.UTC;
            }

            @Override
            public Clock withZone(java.time.ZoneId zone) {
                return this;
            }

            @Override
            public Instant instant() {
                return now[0];
            }
        };
        ExecutionRegistry registry = new ExecutionRegistry(moving, Duration.ofMinutes(1), 8);
        TrackedExecution ended = registry.register(alice);
        ended.complete(new io.agentexec.cluster.api.ExecutionOutcome.NotFound(ended.id(), "test"));
        for (int i = 0; i < 1000; i++) {
            registry.register(alice);
        }
        assertEquals(1, registry.sweeps(), "1001 registrations at one instant: one sweep");
        assertTrue(registry.find(alice, ended.id()).isPresent(), "within its retention");

        now[0] = now[0].plus(Duration.ofMinutes(2)); // past the retention of the one that ended
        registry.register(alice);
        assertEquals(2, registry.sweeps());
        assertTrue(registry.find(alice, ended.id()).isEmpty(), "ended longer than the retention ago: gone");
        assertEquals(1001, registry.size(), "the running ones stay");
    }

    @Test
    void strangeIdsNameNothing() {
        for (String id : new String[]{"exe-", "exe-x", "nope", "exe-01234567-89ab-7def-8123-456789abcdefX", "exe-01234567-89ab-7def-8123-456789abcdef."}) {
            assertEquals(Optional.empty(), ExecutionRegistry.startedAt(id), id);
            assertEquals(Optional.empty(), ExecutionRegistry.sandboxOf(id), id);
        }
    }
}
