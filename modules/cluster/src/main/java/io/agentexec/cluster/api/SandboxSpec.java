package io.agentexec.cluster.api;

import io.agentexec.cluster.CborSerializable;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import java.util.Objects;
import java.util.Optional;

/**
 * What a sandbox's container is made from: its language, limits, and optionally an image (any image
 * name; default the language's image) and hardening options (default the engine's configured
 * ones). Persisted in the sandbox's {@code Created} event and sent to the worker that opens the container;
 * the options keep the field name {@code docker} they were persisted under.
 */
public record SandboxSpec(String language, Limits limits, Optional<String> image, Optional<SandboxOptions> docker)
        implements CborSerializable {

    public SandboxSpec {
        Objects.requireNonNull(language, "language");
        Objects.requireNonNull(limits, "limits");
        Objects.requireNonNull(image, "image");
        Objects.requireNonNull(docker, "docker");
    }

    public static SandboxSpec of(String language, Limits limits) {
        return new SandboxSpec(language, limits, Optional.empty(), Optional.empty());
    }

    public SandboxSpec withImage(String value) {
        return new SandboxSpec(language, limits, Optional.of(value), docker);
    }

    public SandboxSpec withDocker(SandboxOptions value) {
        return new SandboxSpec(language, limits, image, Optional.of(value));
    }

    public SandboxSpec withLanguage(String value) {
        return new SandboxSpec(value, limits, image, docker);
    }

    /** Same container: language, image and options (limits may change per request, so they do not count). */
    public boolean sameContainerAs(SandboxSpec other) {
        return language.equals(other.language) && image.equals(other.image) && docker.equals(other.docker);
    }
}
