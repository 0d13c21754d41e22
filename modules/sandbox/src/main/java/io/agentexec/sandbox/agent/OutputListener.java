package io.agentexec.sandbox.agent;

/** Receives output while a run is in progress, for streaming to a caller. */
@FunctionalInterface
public interface OutputListener {
    OutputListener NONE = (stream, chunk) -> { };

    enum Stream { STDOUT, STDERR }

    void onOutput(Stream stream, byte[] chunk);
}
