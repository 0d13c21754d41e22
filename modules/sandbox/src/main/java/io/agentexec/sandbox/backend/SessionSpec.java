package io.agentexec.sandbox.backend;

import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import java.util.Objects;

/**
 * What a backend needs to open a sandbox: an id (for labels and logs), the image (Docker only),
 * the limits fixed at creation, and the hardening options (applied by the backends that take them).
 */
public record SessionSpec(String sessionId, String image, Limits limits, SandboxOptions options) {
    public SessionSpec {
        Objects.requireNonNull(sessionId, "sessionId");
        Objects.requireNonNull(image, "image");
        Objects.requireNonNull(limits, "limits");
        Objects.requireNonNull(options, "options");
    }
}
