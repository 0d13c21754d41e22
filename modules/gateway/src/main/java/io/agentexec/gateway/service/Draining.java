package io.agentexec.gateway.service;

import java.util.concurrent.atomic.AtomicBoolean;

/** Whether this node still takes new work: not once it is shutting down (the node's drain sets the flag). */
final class Draining {
    private final AtomicBoolean draining;

    Draining(AtomicBoolean draining) {
        this.draining = draining;
    }

    boolean draining() {
        return draining.get();
    }

    /** Refuses a new run, sandbox or conversation on a node that is shutting down: 503, try another. */
    void refuseNewWork() {
        if (draining.get()) {
            throw ApiException.unavailable("shutting_down", "this node is shutting down; try another", ApiException.RETRY_AFTER);
        }
    }
}
