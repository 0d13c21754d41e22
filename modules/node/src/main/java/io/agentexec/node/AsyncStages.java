package io.agentexec.node;

/**
 * Where {@code CompletableFuture} runs the stages it is given no executor for. It uses ForkJoinPool's common pool only
 * when that pool has two or more threads; with one (the JDK's default where the JVM sees two CPUs or fewer: CPUs - 1,
 * as on a 2-core machine or a pod limited to 2 CPUs) it starts a new thread for every such stage. Pekko's Java API
 * hands out Scala's {@code CompletionStage}, which runs every combinator called on it (thenApply, thenCompose,
 * exceptionally, whenComplete...) as such a stage: a node on two CPUs started several threads per request (the
 * "Thread-N" that logged "execution ended", numbered past 29,000 after as many executions).
 */
public final class AsyncStages {
    static final String PARALLELISM = "java.util.concurrent.ForkJoinPool.common.parallelism";
    /** The fewest common-pool threads with which CompletableFuture uses the pool rather than a thread per stage. */
    static final int POOLED_MINIMUM = 2;

    private AsyncStages() {
    }

    /**
     * Gives the common pool enough threads to be used, unless the operator chose its size ({@code -D} of
     * {@value #PARALLELISM}). Must run before anything initialises {@code CompletableFuture}: first in main (the
     * node's, and a benchmark's that starts nodes in its own JVM).
     */
    public static void onTheCommonPool() {
        if (System.getProperty(PARALLELISM) == null && Runtime.getRuntime().availableProcessors() - 1 < POOLED_MINIMUM) {
            System.setProperty(PARALLELISM, Integer.toString(POOLED_MINIMUM));
        }
    }
}
