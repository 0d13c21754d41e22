package io.agentexec.cluster.executors;

import io.agentexec.cluster.CborSerializable;
import java.time.Instant;
import java.util.Objects;

/**
 * One run as the seed's {@code execution_stats} records it ({@code complexity}, {@code execution_time},
 * {@code memory_limit}, {@code cpu_limit}, {@code timeout}, {@code success}), and what agentexec knows besides.
 *
 * @param executor      the executor's (or agent's) name; {@code default} when the request named none
 * @param profile       the profile (the seed's complexity); {@code none} when none was named
 * @param verdict       the engine's verdict ({@code OK}, {@code TIMEOUT}, ...)
 * @param wallTimeMs    the run's wall time (0 for a cached answer)
 * @param timeoutMs     the run's timeout limit
 * @param cached        answered from the cache, nothing ran
 * @param attempts      runs made for it (retries included; 0 when cached or refused by the code policy)
 * @param source        where it came from: {@code http}, {@code grpc}, {@code chat}, {@code cli}, {@code java}
 */
public record StatsSample(String executor, String profile, String verdict, boolean success, long wallTimeMs,
                          long memoryLimitBytes, double cpuLimit, long timeoutMs, boolean cached, int attempts,
                          String source, Instant at) implements CborSerializable {
    public static final String NO_PROFILE = "none";
    public static final String DEFAULT_EXECUTOR = "default";

    public StatsSample {
        Objects.requireNonNull(executor, "executor");
        Objects.requireNonNull(profile, "profile");
        Objects.requireNonNull(verdict, "verdict");
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(at, "at");
    }

    public boolean timedOut() {
        return verdict.equals("TIMEOUT");
    }
}
