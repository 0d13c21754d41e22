package io.agentexec.cluster.port;

import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * What /readyz and /metrics report about the machinery behind the port.
 *
 * @param queueDepthByWorker executions waiting for a slot, per worker
 * @param runningByWorker    executions holding a slot, per worker
 * @param warmPoolByImage    started containers kept ready, per image
 * @param ownWorker          this node's own worker, when it runs one: what its metrics listener exports (each worker
 *                           once, by its own node), the scaling signals
 */
public record PortStatus(boolean ready, String detail, Map<String, Integer> queueDepthByWorker,
                         Map<String, Integer> runningByWorker, Map<String, Integer> warmPoolByImage, int liveSandboxes,
                         Optional<WorkerGauges> ownWorker) {

    /** A worker's capacity and load now: its slots, the executions holding one, those waiting for one. */
    public record WorkerGauges(int slots, int running, int queued) {
    }

    public PortStatus {
        Objects.requireNonNull(detail, "detail");
        Objects.requireNonNull(ownWorker, "ownWorker");
        queueDepthByWorker = Map.copyOf(queueDepthByWorker);
        runningByWorker = Map.copyOf(runningByWorker);
        warmPoolByImage = Map.copyOf(warmPoolByImage);
    }
}
