package io.agentexec.sandbox.model;

/** A request that can never run as given; the message names the offending field. */
public class InvalidRequestException extends IllegalArgumentException {
    public InvalidRequestException(String message) {
        super(message);
    }
}
