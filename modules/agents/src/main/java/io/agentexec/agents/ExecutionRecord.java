package io.agentexec.agents;

import io.agentexec.cluster.executors.AttemptRecord;
import io.agentexec.sandbox.model.Verdict;
import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * One code execution of a chat: what the engine judged, kept beside the message that reported it.
 *
 * @param executionKey the idempotency key: the chat and the index of the message that will carry the result
 * @param cached       answered from the tenant's result cache (CachingExecutor); the code did not run again
 * @param filesWritten workspace files the run created or changed
 * @param attempts     every attempt made (the proxy's {@code retries}), in order; empty when cached or refused
 * @param notes        what the caller should know beside the result (a limit held at the operator's ceiling)
 */
public record ExecutionRecord(String executionKey, String agent, Verdict verdict, int exitCode, String output,
                              long wallTimeMs, String profile, boolean cached, List<String> filesWritten,
                              String backend, Instant finishedAt, List<AttemptRecord> attempts, List<String> notes)
        implements AgentsSerializable {
    public ExecutionRecord {
        Objects.requireNonNull(executionKey, "executionKey");
        Objects.requireNonNull(agent, "agent");
        Objects.requireNonNull(verdict, "verdict");
        Objects.requireNonNull(output, "output");
        Objects.requireNonNull(profile, "profile");
        filesWritten = List.copyOf(filesWritten);
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(finishedAt, "finishedAt");
        // absent in records persisted before retries and notes existed
        attempts = attempts == null ? List.of() : List.copyOf(attempts);
        notes = notes == null ? List.of() : List.copyOf(notes);
    }

    public ExecutionRecord(String executionKey, String agent, Verdict verdict, int exitCode, String output,
                           long wallTimeMs, String profile, boolean cached, List<String> filesWritten, String backend,
                           Instant finishedAt) {
        this(executionKey, agent, verdict, exitCode, output, wallTimeMs, profile, cached, filesWritten, backend,
                finishedAt, List.of(), List.of());
    }
}
