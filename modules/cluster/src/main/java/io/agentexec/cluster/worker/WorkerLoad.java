package io.agentexec.cluster.worker;

import io.agentexec.cluster.CborSerializable;
import org.apache.pekko.actor.typed.ActorRef;

/**
 * A worker's load as it publishes it for placement: slots busy, queue used, and their sizes. {@code draining}: the
 * worker is leaving; placement sends it nothing new (false in reports of workers from before the flag existed).
 */
public record WorkerLoad(ActorRef<ExecutionWorker.Command> worker, int running, int queued, int slots,
                         int queueCapacity, int sessions, boolean draining) implements CborSerializable {

    public WorkerLoad(ActorRef<ExecutionWorker.Command> worker, int running, int queued, int slots, int queueCapacity,
                      int sessions) {
        this(worker, running, queued, slots, queueCapacity, sessions, false);
    }

    /** Slots and queue places still free (none on a draining worker). */
    public int freeCapacity() {
        return draining ? 0 : Math.max(0, slots + queueCapacity - running - queued);
    }

    public int freeSlots() {
        return draining ? 0 : Math.max(0, slots - running);
    }
}
