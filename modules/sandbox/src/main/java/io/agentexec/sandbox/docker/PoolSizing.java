package io.agentexec.sandbox.docker;

/**
 * How many containers the warm pool keeps: pure functions of the recent demand, the time a container takes to make and
 * the memory budget, so that the policy is checked by plain unit tests ({@link WarmPool} applies it).
 *
 * <p>Fresh containers (never used, so any session or tenant may take one) are kept for the takes that recycling did not
 * serve: while one is being made ({@code createSeconds}), {@code rate x createSeconds} takes arrive, so that many,
 * times the headroom, are kept ready. Recycled containers of one owner are kept for that owner's own demand: by Little's
 * law {@code rate x busySeconds} of them are out at once (run and scrub), and as many again (the headroom) wait idle.
 * Both shrink when their demand stops: back to the floor (fresh) or to none (recycled) after the idle timeout.
 */
final class PoolSizing {
    private PoolSizing() {
    }

    /**
     * A rate of events over the recent past: an exponentially decaying count with time constant {@code window}
     * (an event {@code window} ago weighs 1/e of one now). Not thread-safe; the pool guards it.
     */
    static final class Rate {
        private final double windowSeconds;
        private double weight;
        private long lastNanos;
        private boolean any;

        Rate(double windowSeconds) {
            if (!(windowSeconds > 0)) {
                throw new IllegalArgumentException("a rate's window must be positive, got " + windowSeconds);
            }
            this.windowSeconds = windowSeconds;
        }

        /** One event at {@code nanos} (a {@link System#nanoTime} reading; events come in time order). */
        void event(long nanos) {
            weight = decayed(nanos) + 1;
            lastNanos = nanos;
            any = true;
        }

        /** Events per second around {@code nanos}. */
        double perSecond(long nanos) {
            return decayed(nanos) / windowSeconds;
        }

        /** Seconds since the last event (infinite when there was none). */
        double idleSeconds(long nanos) {
            return any ? Math.max(0, (nanos - lastNanos) / 1e9) : Double.POSITIVE_INFINITY;
        }

        private double decayed(long nanos) {
            if (!any) {
                return 0;
            }
            double age = Math.max(0, (nanos - lastNanos) / 1e9);
            return weight * Math.exp(-age / windowSeconds);
        }
    }

    /**
     * Fresh containers an image's pool aims to hold, ready or being made (those made for callers already waiting come
     * on top).
     *
     * @param takesPerSecond recent takes of the image that no recycled container served
     * @param createSeconds  how long making one takes now
     * @param idleSeconds    since the image's last take
     * @param floor          kept whatever the demand ({@code warm-pool.size})
     * @param affordable     how many more containers the memory budget allows the pool to hold, besides what it
     *                       holds of other kinds (recycled, other images)
     */
    static int freshTarget(double takesPerSecond, double createSeconds, double idleSeconds, int floor, int maxSize,
                           double headroom, double idleTimeoutSeconds, int affordable) {
        int target = floor;
        if (idleSeconds < idleTimeoutSeconds) {
            double during = Math.max(0, takesPerSecond) * Math.max(0, createSeconds) * headroom;
            target = Math.max(floor, (int) Math.ceil(during - 1e-9));
        }
        target = Math.min(target, Math.max(floor, maxSize));
        return Math.max(0, Math.min(target, affordable));
    }

    /**
     * Idle recycled containers one owner may keep of an image: those its recent rate needs (one at least while it is
     * active, so that a tenant's next one-off in sequence finds its own), none once it has been idle for the timeout.
     *
     * @param takesPerSecond the owner's recent one-offs of the image
     * @param busySeconds    how long a container is out (taken, run, scrubbed, given back)
     */
    static int recycledTarget(double takesPerSecond, double busySeconds, double idleSeconds, double headroom,
                              double idleTimeoutSeconds, int maxIdle) {
        if (idleSeconds >= idleTimeoutSeconds) {
            return 0;
        }
        double out = Math.max(0, takesPerSecond) * Math.max(0, busySeconds);
        int target = Math.max(1, (int) Math.ceil(out * headroom - 1e-9));
        return Math.min(target, maxIdle);
    }

    /**
     * How many of a queue's idle containers to retire now, from its head: those beyond {@code target} that have not
     * been taken for {@code idleTimeoutSeconds} (as a connection pool retires connections above its minimum). The
     * targets are estimates of a rate that moves from one second to the next and decays within its window once takes
     * pause; retiring a container the moment an estimate dips, only to make another when the takes resume, costs a
     * container's creation (about a second of the daemon's work on 2 cores) each time. An idle container costs its
     * agent's and zygote's memory (~10-20 MB), and the memory budget still evicts at once.
     *
     * @param idleSinceNanos when each idle container became idle, oldest first (the order of the pool's queues)
     */
    static int idleToRetire(long[] idleSinceNanos, int target, long nowNanos, double idleTimeoutSeconds) {
        int n = 0;
        while (idleSinceNanos.length - n > Math.max(0, target)
                && (nowNanos - idleSinceNanos[n]) / 1e9 >= idleTimeoutSeconds) {
            n++;
        }
        return n;
    }

    /** How many containers of {@code containerBytes} each the budget holds besides {@code heldBytes}. */
    static int affordable(long budgetBytes, long heldBytes, long containerBytes) {
        if (containerBytes <= 0) {
            return Integer.MAX_VALUE;
        }
        long room = budgetBytes - heldBytes;
        return room <= 0 ? 0 : (int) Math.min(Integer.MAX_VALUE, room / containerBytes);
    }
}
