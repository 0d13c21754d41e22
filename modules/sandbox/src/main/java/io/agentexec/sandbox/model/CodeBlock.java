package io.agentexec.sandbox.model;

import java.util.Objects;

/** One fenced block from a message: its language tag (may be empty) and its code. */
public record CodeBlock(String language, String code) {
    public CodeBlock {
        Objects.requireNonNull(language, "language");
        Objects.requireNonNull(code, "code");
    }
}
