package io.agentexec.sandbox.model;

/** How one block of a request ended; the request's result aggregates these. */
public record BlockOutcome(int index, String language, Verdict verdict, int exitCode, long wallTimeMs) {
}
