package io.agentexec.cluster.port;

import java.util.Objects;

/** A caller's sandbox as the port reports it: its id (as the caller named it), language and status. */
public record SandboxInfo(String sandboxId, String language, String status) {
    public SandboxInfo {
        Objects.requireNonNull(sandboxId, "sandboxId");
        Objects.requireNonNull(language, "language");
        Objects.requireNonNull(status, "status");
    }
}
