package io.agentexec.sandbox.model;

/** A workspace file that a run created or changed, with its size after the run. */
public record FileWritten(String path, long sizeBytes) {
}
