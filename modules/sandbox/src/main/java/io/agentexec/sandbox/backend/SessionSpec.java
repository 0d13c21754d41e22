package io.agentexec.sandbox.backend;

import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import java.util.Objects;
import java.util.Optional;

/**
 * What a backend needs to open a sandbox: an id (for labels and logs), the image (Docker only),
 * the limits fixed at creation, and the hardening options (applied by the backends that take them).
 *
 * @param owner for a one-off, whom it runs for (the cluster's tenant): a backend that recycles sandboxes may hand it
 *              a scrubbed sandbox of the same owner's earlier one-offs, and keep this one for the owner's next
 *              ({@link BackendSession#recycle}); empty: a sandbox no other run will ever get
 */
public record SessionSpec(String sessionId, String image, Limits limits, SandboxOptions options, Optional<String> owner) {
    public SessionSpec {
        Objects.requireNonNull(sessionId, "sessionId");
        Objects.requireNonNull(image, "image");
        Objects.requireNonNull(limits, "limits");
        Objects.requireNonNull(options, "options");
        Objects.requireNonNull(owner, "owner");
        owner.ifPresent(o -> {
            if (o.isBlank()) {
                throw new IllegalArgumentException("a sandbox's owner is a non-blank name");
            }
        });
    }

    /** A sandbox of no owner: never recycled. */
    public SessionSpec(String sessionId, String image, Limits limits, SandboxOptions options) {
        this(sessionId, image, limits, options, Optional.empty());
    }
}
