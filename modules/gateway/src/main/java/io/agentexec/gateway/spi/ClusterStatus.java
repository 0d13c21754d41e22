package io.agentexec.gateway.spi;

import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletionStage;

/** What /readyz and /metrics report about the machinery behind the gateway. */
public interface ClusterStatus {

    /**
     * @param queueDepthByWorker executions waiting for a slot, per worker
     * @param runningByWorker    executions holding a slot, per worker
     * @param warmPoolByImage    started containers kept ready, per image
     */
    record Snapshot(boolean ready, String detail, Map<String, Integer> queueDepthByWorker,
                    Map<String, Integer> runningByWorker, Map<String, Integer> warmPoolByImage, int liveSandboxes) {
        public Snapshot {
            Objects.requireNonNull(detail, "detail");
            queueDepthByWorker = Map.copyOf(queueDepthByWorker);
            runningByWorker = Map.copyOf(runningByWorker);
            warmPoolByImage = Map.copyOf(warmPoolByImage);
        }
    }

    CompletionStage<Snapshot> snapshot();

    /** The backend's name for logs and /healthz: engine or cluster. */
    String kind();
}
