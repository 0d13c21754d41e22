package io.agentexec.sandbox.backend;

/** No sandbox can be made: the daemon does not answer, bwrap is missing, an image is absent. */
public class SandboxUnavailableException extends RuntimeException {
    public SandboxUnavailableException(String message) {
        super(message);
    }

    public SandboxUnavailableException(String message, Throwable cause) {
        super(message, cause);
    }
}
