package io.agentexec.cluster.port;

import java.util.Map;
import java.util.Objects;

/**
 * What /readyz and /metrics report about the machinery behind the port.
 *
 * @param queueDepthByWorker executions waiting for a slot, per worker
 * @param runningByWorker    executions holding a slot, per worker
 * @param warmPoolByImage    started containers kept ready, per image
 */
public record PortStatus(boolean ready, String detail, Map<String, Integer> queueDepthByWorker,
                         Map<String, Integer> runningByWorker, Map<String, Integer> warmPoolByImage, int liveSandboxes) {
    public PortStatus {
        Objects.requireNonNull(detail, "detail");
        queueDepthByWorker = Map.copyOf(queueDepthByWorker);
        runningByWorker = Map.copyOf(runningByWorker);
        warmPoolByImage = Map.copyOf(warmPoolByImage);
    }
}
