package io.agentexec.sandbox.docker;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The warm pool's sizing policy: pure functions of the recent demand, the creation time and the budget. */
class PoolSizingTest {
    private static final long SECOND = 1_000_000_000L;
    private static final int FLOOR = 2;
    private static final int MAX = 16;
    private static final double HEADROOM = 2.0;
    private static final double IDLE_TIMEOUT = 60;

    private static int fresh(double rate, double createSeconds, double idle, int affordable) {
        return PoolSizing.freshTarget(rate, createSeconds, idle, FLOOR, MAX, HEADROOM, IDLE_TIMEOUT, affordable);
    }

    @Test
    void withoutDemandThePoolKeepsItsFloor() {
        assertEquals(FLOOR, fresh(0, 1.0, Double.POSITIVE_INFINITY, 100));
        assertEquals(FLOOR, fresh(0.1, 1.0, 1, 100), "a trickle needs no more than the floor");
    }

    @Test
    void theTargetGrowsWithTheRateTimesTheCreationTime() {
        // 4 takes a second, 1 s to make one: 4 arrive while one is made, twice that kept ready.
        assertEquals(8, fresh(4, 1.0, 0.1, 100));
        assertEquals(4, fresh(4, 0.5, 0.1, 100), "faster creation, fewer kept");
        assertEquals(16, fresh(8, 1.0, 0.1, 100));
        assertTrue(fresh(8, 1.0, 0.1, 100) > fresh(4, 1.0, 0.1, 100));
    }

    @Test
    void theTargetNeverPassesTheMaximumOrTheBudget() {
        assertEquals(MAX, fresh(100, 2.0, 0.1, 100));
        assertEquals(5, fresh(100, 2.0, 0.1, 5), "the budget allows 5 more");
        assertEquals(0, fresh(100, 2.0, 0.1, 0), "an exhausted budget holds nothing, not even the floor");
        assertEquals(1, fresh(0, 1.0, Double.POSITIVE_INFINITY, 1), "the floor is cut by the budget too");
    }

    @Test
    void afterTheIdleTimeoutThePoolShrinksBackToItsFloor() {
        assertEquals(8, fresh(4, 1.0, IDLE_TIMEOUT - 1, 100));
        assertEquals(FLOOR, fresh(4, 1.0, IDLE_TIMEOUT, 100));
    }

    @Test
    void anOwnerKeepsWhatItsRateNeedsAtLeastOneWhileActiveAndNoneWhenIdle() {
        // 10 one-offs a second, each container out 0.2 s: 2 out at once, as many again idle.
        assertEquals(4, PoolSizing.recycledTarget(10, 0.2, 0.05, HEADROOM, IDLE_TIMEOUT, 16));
        assertEquals(1, PoolSizing.recycledTarget(0.05, 0.2, 5, HEADROOM, IDLE_TIMEOUT, 16), "one for the next in sequence");
        assertEquals(16, PoolSizing.recycledTarget(1000, 1, 0.01, HEADROOM, IDLE_TIMEOUT, 16), "capped per tenant");
        assertEquals(0, PoolSizing.recycledTarget(10, 0.2, IDLE_TIMEOUT, HEADROOM, IDLE_TIMEOUT, 16));
    }

    @Test
    void containersBeyondTheTargetGoOnlyOnceTheyHaveSatIdleForTheIdleTimeout() {
        long now = 100 * SECOND;
        // Four idle, oldest first: idle 30 s, 12 s, 3 s and 0.5 s; the target fell to one, the idle timeout is 10 s.
        long[] since = {now - 30 * SECOND, now - 12 * SECOND, now - 3 * SECOND, now - SECOND / 2};
        assertEquals(2, PoolSizing.idleToRetire(since, 1, now, 10), "the two taken within the timeout stay");
        assertEquals(1, PoolSizing.idleToRetire(since, 3, now, 10), "no more than the surplus");
        assertEquals(0, PoolSizing.idleToRetire(since, 4, now, 10), "none at or under the target");
        assertEquals(4, PoolSizing.idleToRetire(since, 0, now, 0), "a zero timeout retires the whole surplus at once");
        assertEquals(0, PoolSizing.idleToRetire(new long[0], 0, now, 10));
        assertEquals(0, PoolSizing.idleToRetire(new long[] {now - SECOND}, 0, now, 10),
                "an owner's last container, used a second ago, waits for the timeout even when its target is none");
    }

    @Test
    void theBudgetCountsWholeContainers() {
        long mib = 1024 * 1024;
        assertEquals(16, PoolSizing.affordable(8192 * mib, 0, 512 * mib));
        assertEquals(15, PoolSizing.affordable(8192 * mib, 300 * mib, 512 * mib));
        assertEquals(0, PoolSizing.affordable(8192 * mib, 8192 * mib, 512 * mib));
        assertEquals(0, PoolSizing.affordable(100, 200, 10), "over budget: nothing more");
    }

    @Test
    void aRateDecaysOverItsWindow() {
        PoolSizing.Rate rate = new PoolSizing.Rate(10);
        assertEquals(0, rate.perSecond(0));
        assertEquals(Double.POSITIVE_INFINITY, rate.idleSeconds(0));
        long t = 0;
        // One event a second for long enough to reach the steady state: about one per second.
        for (int i = 0; i < 200; i++) {
            t += SECOND;
            rate.event(t);
        }
        assertEquals(1.0, rate.perSecond(t), 0.06);
        assertEquals(0, rate.idleSeconds(t));
        // One window later without events: 1/e of it.
        assertEquals(rate.perSecond(t) / Math.E, rate.perSecond(t + 10 * SECOND), 1e-9);
        assertEquals(10.0, rate.idleSeconds(t + 10 * SECOND), 1e-9);
        assertThrows(IllegalArgumentException.class, () -> new PoolSizing.Rate(0));
    }
}
