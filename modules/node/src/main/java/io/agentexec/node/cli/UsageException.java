package io.agentexec.node.cli;

/** A command line that cannot be run as given; its message is printed as one line on stderr. */
final class UsageException extends RuntimeException {
    UsageException(String message) {
        super(message);
    }
}
