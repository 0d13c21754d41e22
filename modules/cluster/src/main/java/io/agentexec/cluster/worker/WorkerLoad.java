package io.agentexec.cluster.worker;

import io.agentexec.cluster.CborSerializable;
import org.apache.pekko.actor.typed.ActorRef;

/** A worker's load as it publishes it for placement: slots busy, queue used, and their sizes. */
public record WorkerLoad(ActorRef<ExecutionWorker.Command> worker, int running, int queued, int slots,
                         int queueCapacity, int sessions) implements CborSerializable {

    /** Slots and queue places still free. */
    public int freeCapacity() {
        return Math.max(0, slots + queueCapacity - running - queued);
    }

    public int freeSlots() {
        return Math.max(0, slots - running);
    }
}
