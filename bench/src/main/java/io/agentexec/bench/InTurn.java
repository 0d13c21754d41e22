package io.agentexec.bench;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Paths measured at concurrency 1, interleaved: one caller, one call of each path per round, in turn, so that load
 * from elsewhere on the machine falls on all of them alike.
 */
final class InTurn {
    private InTurn() {
    }

    /** Opens a path's caller (its connection, typically). */
    @FunctionalInterface
    interface Opener {
        Call open() throws Exception;
    }

    /**
     * Each path's caller is opened and makes its {@code warmUpCalls} unmeasured calls at once (a gateway closes a
     * connection whose first request does not come within its header timeout); then {@code rounds} rounds, a
     * {@code pause} after every call. Milliseconds per call, per path, in the paths' order.
     */
    static Map<String, double[]> measure(Map<String, Opener> paths, int warmUpCalls, int rounds, Duration pause)
            throws Exception {
        Map<String, Call> calls = new LinkedHashMap<>();
        for (var e : paths.entrySet()) {
            Call call = e.getValue().open();
            for (int w = 0; w < warmUpCalls; w++) {
                call.run();
                Thread.sleep(pause.toMillis());
            }
            calls.put(e.getKey(), call);
        }
        Map<String, double[]> times = new LinkedHashMap<>();
        calls.keySet().forEach(k -> times.put(k, new double[rounds]));
        for (int round = 0; round < rounds; round++) {
            for (var e : calls.entrySet()) {
                long t0 = System.nanoTime();
                e.getValue().run();
                times.get(e.getKey())[round] = (System.nanoTime() - t0) / 1e6;
                Thread.sleep(pause.toMillis());
            }
        }
        return times;
    }
}
