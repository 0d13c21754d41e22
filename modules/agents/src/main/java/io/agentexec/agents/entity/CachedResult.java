package io.agentexec.agents.entity;

import io.agentexec.agents.AgentsSerializable;
import io.agentexec.sandbox.model.Verdict;
import java.util.List;
import java.util.Objects;

/** A cached execution result (CachingExecutor); SANDBOX_ERROR results are never cached. */
public record CachedResult(String cacheKey, Verdict verdict, int exitCode, String output, String ag2Reply,
                           List<String> filesWritten, String backend, long wallTimeMs) implements AgentsSerializable {
    public CachedResult {
        Objects.requireNonNull(cacheKey, "cacheKey");
        Objects.requireNonNull(verdict, "verdict");
        if (verdict == Verdict.SANDBOX_ERROR) {
            throw new IllegalArgumentException("a SANDBOX_ERROR result is an infrastructure failure and is never cached");
        }
        Objects.requireNonNull(output, "output");
        Objects.requireNonNull(ag2Reply, "ag2Reply");
        filesWritten = List.copyOf(filesWritten);
        Objects.requireNonNull(backend, "backend");
    }
}
