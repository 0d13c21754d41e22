package io.agentexec.sandbox.backend;

import io.agentexec.sandbox.docker.DockerOptions;
import io.agentexec.sandbox.model.Limits;
import java.util.Objects;

/**
 * What a backend needs to open a sandbox: an id (for labels and logs), the image (Docker only),
 * the limits fixed at creation, and the Docker hardening options.
 */
public record SessionSpec(String sessionId, String image, Limits limits, DockerOptions dockerOptions) {
    public SessionSpec {
        Objects.requireNonNull(sessionId, "sessionId");
        Objects.requireNonNull(image, "image");
        Objects.requireNonNull(limits, "limits");
        Objects.requireNonNull(dockerOptions, "dockerOptions");
    }
}
