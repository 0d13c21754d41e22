package io.agentexec.agents.execution;

import io.agentexec.agents.Isolation;
import io.agentexec.sandbox.model.ExecutionRequest;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * One execution an agent asks for.
 *
 * @param sandboxKey   the agent's workspace (AG2's work_dir) in one chat: files persist across its executions
 * @param executionKey idempotency key: asking again with the same key must not run the code again
 * @param image        the image to run in; empty: the default image of the first block's language
 */
public record ExecutionCall(String sandboxKey, String executionKey, Isolation isolation, Optional<String> image,
                            Optional<String> containerName, List<String> dockerRunArgs, ExecutionRequest request) {
    public ExecutionCall {
        Objects.requireNonNull(sandboxKey, "sandboxKey");
        Objects.requireNonNull(executionKey, "executionKey");
        Objects.requireNonNull(isolation, "isolation");
        Objects.requireNonNull(image, "image");
        Objects.requireNonNull(containerName, "containerName");
        dockerRunArgs = List.copyOf(dockerRunArgs);
        Objects.requireNonNull(request, "request");
    }
}
