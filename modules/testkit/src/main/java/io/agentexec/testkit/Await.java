package io.agentexec.testkit;

import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * The one way tests wait: for a stage to complete, or for a condition to hold, polling within a bound. The bound is
 * generous (a loaded 2-core CI machine runs several JVMs and Docker at once): it limits a hang, it is not a speed goal.
 */
public final class Await {
    /** How long any wait lasts at most unless a test says otherwise; AGENTEXEC_TEST_WAIT_SECONDS overrides. */
    public static final Duration WAIT = Duration.ofSeconds(Long.parseLong(
            Optional.ofNullable(System.getenv("AGENTEXEC_TEST_WAIT_SECONDS")).orElse("180")));
    private static final long POLL_MILLIS = 50;

    private Await() {
    }

    /**
     * The stage's value; its failure as the {@link ExecutionException} it completed with (tests assert on the cause),
     * an {@link AssertionError} if it is not complete within {@link #WAIT}.
     */
    public static <T> T result(CompletionStage<T> stage) throws ExecutionException {
        return result(stage, WAIT);
    }

    public static <T> T result(CompletionStage<T> stage, Duration within) throws ExecutionException {
        try {
            return stage.toCompletableFuture().get(within.toMillis(), TimeUnit.MILLISECONDS);
        } catch (TimeoutException e) {
            throw new AssertionError("not complete within " + within, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError("interrupted while waiting", e);
        }
    }

    /** The stage's value; any failure or timeout is an {@link AssertionError} (for tests that expect success). */
    public static <T> T value(CompletionStage<T> stage) {
        try {
            return result(stage, WAIT);
        } catch (ExecutionException e) {
            throw new AssertionError("failed: " + e.getCause(), e.getCause());
        }
    }

    /** Returns once the condition holds; an {@link AssertionError} naming what was awaited if it does not in time. */
    public static void until(String what, BooleanSupplier condition) {
        until(what, WAIT, () -> condition.getAsBoolean() ? Optional.of(Boolean.TRUE) : Optional.empty());
    }

    /** The first value the supplier offers within {@link #WAIT}. */
    public static <T> T until(String what, Supplier<Optional<T>> condition) {
        return until(what, WAIT, condition);
    }

    public static <T> T until(String what, Duration within, Supplier<Optional<T>> condition) {
        long deadline = System.nanoTime() + within.toNanos();
        while (true) {
            Optional<T> value = condition.get();
            if (value.isPresent()) {
                return value.get();
            }
            if (System.nanoTime() > deadline) {
                throw new AssertionError("timed out after " + within + " waiting for: " + what);
            }
            try {
                Thread.sleep(POLL_MILLIS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError("interrupted waiting for: " + what, e);
            }
        }
    }
}
