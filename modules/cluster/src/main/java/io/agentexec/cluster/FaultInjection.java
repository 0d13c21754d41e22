package io.agentexec.cluster;

import java.util.function.BiConsumer;

/**
 * Fault points for tests: the few places where a test must stall a worker or stop a coordinator at
 * the one moment a fault matters (a window of milliseconds no external kill can hit reliably). Every
 * point does nothing unless a test sets it; no configuration of a node reaches them.
 */
public final class FaultInjection {
    private FaultInjection() {
    }

    /**
     * Called on the worker's file thread with the sandbox id and path of each file operation, once the
     * sandbox's container is at hand and just before the agent is asked: a test blocks here to stand
     * for an agent stuck in a read (a FIFO, a hung filesystem). Set and reset by tests in this JVM.
     */
    public static volatile BiConsumer<String, String> beforeFileOperation = (sandboxId, path) -> { };

    /**
     * A system property holding an idempotency-key prefix: a coordinator (the node of the execution's or
     * sandbox's entity) started with it halts its JVM at once, as {@code kill -9} would, when a worker has
     * accepted an execution whose key starts with it and before the entity persisted that. For tests
     * that start a node in a child JVM.
     */
    public static final String HALT_AFTER_ACCEPT_PROPERTY = "agentexec.fault.halt-coordinator-after-accept";

    private static final String HALT_AFTER_ACCEPT = System.getProperty(HALT_AFTER_ACCEPT_PROPERTY, "");

    /** The coordinator heard a worker accept {@code executionKey} and has not persisted it yet. */
    public static void workerAccepted(String executionKey) {
        if (!HALT_AFTER_ACCEPT.isEmpty() && executionKey.startsWith(HALT_AFTER_ACCEPT)) {
            System.out.println("fault injection: halting the coordinator after the worker accepted " + executionKey);
            System.out.flush();
            Runtime.getRuntime().halt(137);
        }
    }
}
