package io.agentexec.cluster.port.quota;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import io.agentexec.cluster.api.SandboxView;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.pekko.Done;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.apache.pekko.persistence.testkit.javadsl.PersistenceTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The tenant's live-sandbox slots alone, under EventSourcedBehaviorTestKit: reserve, release, readmit, the
 * check of the slots' sandboxes at the limit (closed, expired, never created, not answering), the commands
 * that wait for that check, and recovery. The sandboxes' statuses come from a table the test fills in (in the
 * gateway they come from the cluster's sandbox entities).
 */
class TenantSandboxesTest {
    private static final Duration WAIT = Duration.ofSeconds(10);
    private static final ActorTestKit testKit = ActorTestKit.create("tenant-sandboxes", ConfigFactory.parseString("""
            pekko.actor.provider = local
            pekko.loglevel = WARNING
            """).withFallback(EventSourcedBehaviorTestKit.config()));
    private static final PersistenceTestKit journal = PersistenceTestKit.create(testKit.system());

    /** What each sandbox answers when asked for its status; absent: the ask fails (a node that does not answer). */
    private final Map<String, CompletableFuture<SandboxView.Status>> statuses = new ConcurrentHashMap<>();
    private String tenant;

    @AfterAll
    static void stop() {
        testKit.shutdownTestKit();
    }

    @BeforeEach
    void newTenant() {
        tenant = "tenant-" + UUID.randomUUID();
        statuses.clear();
    }

    private CompletionStage<SandboxView.Status> statusOf(String sandboxId) {
        return statuses.getOrDefault(sandboxId, CompletableFuture.failedFuture(new IllegalStateException("no answer")));
    }

    private EventSourcedBehaviorTestKit<TenantSandboxes.Command, TenantSandboxes.Event, TenantSandboxes.State> slots(
            Duration reservationTimeout) {
        return EventSourcedBehaviorTestKit.create(testKit.system(),
                TenantSandboxes.create(tenant, this::statusOf, reservationTimeout, 3));
    }

    private TenantSandboxes.Decision reserve(
            EventSourcedBehaviorTestKit<TenantSandboxes.Command, TenantSandboxes.Event, TenantSandboxes.State> kit,
            String sandboxId, int maxLive) {
        return kit.<TenantSandboxes.Decision>runCommand(r -> new TenantSandboxes.Reserve(sandboxId, maxLive, r)).reply();
    }

    private List<Object> events() {
        return journal.persistedInStorage("TenantSandboxes|" + tenant);
    }

    @Test
    void slotsAreTakenUpToTheLimitOncePerSandbox() {
        var kit = slots(Duration.ofMinutes(1));
        assertEquals(new TenantSandboxes.Granted(1), reserve(kit, "a", 2));
        assertEquals(new TenantSandboxes.Granted(1), reserve(kit, "a", 2), "the same sandbox again: no second slot");
        assertEquals(new TenantSandboxes.Granted(2), reserve(kit, "b", 2));
        statuses.put("a", CompletableFuture.completedFuture(SandboxView.Status.ACTIVE));
        statuses.put("b", CompletableFuture.completedFuture(SandboxView.Status.ACTIVE));
        assertEquals(new TenantSandboxes.Refused(2), reserve(kit, "c", 2));
        assertEquals(2, events().size());
        assertEquals(List.of("a", "b"), kit.<TenantSandboxes.Held>runCommand(TenantSandboxes.GetHeld::new).reply().sandboxIds());
    }

    @Test
    void atTheLimitClosedAndExpiredSandboxesGiveTheirSlotsBack() {
        var kit = slots(Duration.ofMinutes(1));
        reserve(kit, "closed", 3);
        reserve(kit, "expired", 3);
        reserve(kit, "active", 3);
        statuses.put("closed", CompletableFuture.completedFuture(SandboxView.Status.CLOSED));
        statuses.put("expired", CompletableFuture.completedFuture(SandboxView.Status.EXPIRED));
        statuses.put("active", CompletableFuture.completedFuture(SandboxView.Status.ACTIVE));
        assertEquals(new TenantSandboxes.Granted(2), reserve(kit, "new", 3));
        assertEquals(List.of("active", "new"), kit.<TenantSandboxes.Held>runCommand(TenantSandboxes.GetHeld::new).reply().sandboxIds());
        List<Object> events = events();
        assertEquals(6, events.size(), events.toString());
        assertEquals(List.of("closed", "expired"), events.subList(3, 5).stream()
                .map(e -> ((TenantSandboxes.Released) e).sandboxId()).sorted().toList());
    }

    @Test
    void aReservationWhoseSandboxNeverCameIsFreedOnlyAfterTheTimeout() {
        var patient = slots(Duration.ofHours(1));
        reserve(patient, "never", 1);
        statuses.put("never", CompletableFuture.completedFuture(SandboxView.Status.NONE));
        assertEquals(new TenantSandboxes.Refused(1), reserve(patient, "other", 1), "within the reservation timeout");

        tenant = "tenant-" + UUID.randomUUID();
        var hasty = slots(Duration.ZERO);
        reserve(hasty, "never", 1);
        // Older than the timeout (as soon as a millisecond has passed): freed at the next check.
        testKit.createTestProbe().awaitAssert(WAIT, () -> {
            assertEquals(new TenantSandboxes.Granted(1), reserve(hasty, "other", 1));
            return null;
        });
        assertTrue(((TenantSandboxes.Released) events().get(1)).reason().startsWith("no sandbox was created within"));
    }

    @Test
    void aSandboxThatDoesNotAnswerKeepsItsSlot() {
        var kit = slots(Duration.ofMillis(1));
        reserve(kit, "silent", 1);
        assertEquals(new TenantSandboxes.Refused(1), reserve(kit, "other", 1));
        assertEquals(1, events().size());
    }

    @Test
    void commandsWaitForTheCheckInProgressSoThatDecisionsStayInOrder() {
        var kit = slots(Duration.ofMinutes(1));
        reserve(kit, "a", 1);
        CompletableFuture<SandboxView.Status> slow = new CompletableFuture<>();
        statuses.put("a", slow);
        TestProbe<TenantSandboxes.Decision> reserver = testKit.createTestProbe();
        TestProbe<Done> releaser = testKit.createTestProbe();
        kit.runCommand(new TenantSandboxes.Reserve("b", 1, reserver.ref()));
        kit.runCommand(new TenantSandboxes.Release("a", releaser.ref()));
        releaser.expectNoMessage(Duration.ofMillis(200)); // waits behind the check
        slow.complete(SandboxView.Status.ACTIVE);
        assertEquals(new TenantSandboxes.Refused(1), reserver.expectMessageClass(TenantSandboxes.Refused.class, WAIT));
        releaser.expectMessage(WAIT, Done.getInstance());
        assertEquals(List.of(), kit.<TenantSandboxes.Held>runCommand(TenantSandboxes.GetHeld::new).reply().sandboxIds());
    }

    @Test
    void releaseAndReadmitAndTheSlotsComeBackAfterARestart() {
        var kit = slots(Duration.ofMinutes(1));
        reserve(kit, "a", 1);
        assertEquals(Done.getInstance(), kit.<Done>runCommand(r -> new TenantSandboxes.Release("unheld", r)).reply());
        assertEquals(1, events().size(), "releasing an unheld slot records nothing");
        kit.runCommand(new TenantSandboxes.Readmit("b")); // it holds a container again: counted, past the limit
        assertEquals(List.of("a", "b"), kit.getState().slots().keySet().stream().sorted().toList());
        kit.runCommand(new TenantSandboxes.Readmit("b"));
        assertEquals(2, events().size(), "readmitting a held one records nothing");
        assertEquals(Done.getInstance(), kit.<Done>runCommand(r -> new TenantSandboxes.Release("a", r)).reply());
        assertInstanceOf(TenantSandboxes.Released.class, events().get(2));
        reserve(kit, "c", 5);
        reserve(kit, "d", 5); // past snapshotEvery (3): recovery starts from a snapshot
        assertEquals(List.of("b", "c", "d"), kit.restart().state().slots().keySet().stream().sorted().toList());
    }
}
