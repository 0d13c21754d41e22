package io.agentexec.agents.llm;

/** A model could not answer: not reachable after retries, refused the request, or a script ran out. */
public final class LlmException extends RuntimeException {
    public LlmException(String message) {
        super(message);
    }

    public LlmException(String message, Throwable cause) {
        super(message, cause);
    }
}
