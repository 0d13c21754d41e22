package io.agentexec.agents;

import io.agentexec.sandbox.model.Verdict;
import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * One code execution of a chat: what the engine judged, kept beside the message that reported it.
 *
 * @param executionKey the idempotency key: the chat and the index of the message that will carry the result
 * @param cached       answered from the agent's result cache (CachingExecutor); the code did not run again
 * @param filesWritten workspace files the run created or changed
 */
public record ExecutionRecord(String executionKey, String agent, Verdict verdict, int exitCode, String output,
                              long wallTimeMs, String profile, boolean cached, List<String> filesWritten,
                              String backend, Instant finishedAt) implements AgentsSerializable {
    public ExecutionRecord {
        Objects.requireNonNull(executionKey, "executionKey");
        Objects.requireNonNull(agent, "agent");
        Objects.requireNonNull(verdict, "verdict");
        Objects.requireNonNull(output, "output");
        Objects.requireNonNull(profile, "profile");
        filesWritten = List.copyOf(filesWritten);
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(finishedAt, "finishedAt");
    }
}
