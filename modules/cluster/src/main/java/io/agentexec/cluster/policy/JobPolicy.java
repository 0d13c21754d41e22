package io.agentexec.cluster.policy;

import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.docker.DockerBackendSettings;
import io.agentexec.sandbox.docker.DockerOptions;
import io.agentexec.sandbox.docker.DockerRunArgs;
import io.agentexec.sandbox.docker.SandboxUser;
import io.agentexec.sandbox.language.LanguageTable;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.policy.ExecutionPolicy;
import io.agentexec.sandbox.policy.PolicyViolationException;
import java.util.Objects;

/**
 * The operator's {@link ExecutionPolicy} and the engine's hardening floor, as the cluster applies them to
 * what it is asked to run: at its API (whoever calls it) and again on the worker, for every job and every
 * container it opens, so that nothing that reaches a worker's port runs unchecked. Throws
 * {@link PolicyViolationException} (an {@link InvalidRequestException}) naming the rule.
 */
public final class JobPolicy {
    private final ExecutionPolicy policy;
    private final LanguageTable languages;
    private final DockerBackendSettings docker;

    public JobPolicy(ExecutionPolicy policy, EngineSettings engine) {
        this.policy = Objects.requireNonNull(policy, "policy");
        this.languages = engine.languages();
        this.docker = engine.docker();
    }

    public ExecutionPolicy policy() {
        return policy;
    }

    /** A run's limits and image. */
    public void checkRequest(ExecutionRequest request) {
        policy.check(request, languages);
    }

    /** A sandbox's limits, image and Docker options. */
    public void checkSandbox(SandboxSpec spec) {
        policy.checkSandbox(spec.image(), spec.limits(), languages);
        spec.docker().ifPresent(this::checkDockerOptions);
    }

    /**
     * Options given directly get the checks {@code docker_run_args} get: nothing weaker than this
     * engine's hardening, networks only from its allowed list, the configured runtime or a listed one, a user
     * through the one user parser.
     */
    public void checkDockerOptions(DockerOptions options) {
        DockerOptions defaults = docker.defaults();
        if (!options.networkMode().equals("none") && !docker.allowedNetworks().contains(options.networkMode())) {
            throw violation("network " + options.networkMode() + " is not allowed; allowed: " + docker.allowedNetworks());
        }
        docker.runtimeProblem(options.runtime()).ifPresent(problem -> {
            throw violation(problem);
        });
        try {
            SandboxUser.parse(options.user());
        } catch (IllegalArgumentException e) {
            throw violation("user refused, it could run as root: " + e.getMessage());
        }
        if (defaults.readOnlyRootFilesystem() && !options.readOnlyRootFilesystem()) {
            throw violation("a writable root filesystem weakens isolation");
        }
        if (defaults.noNewPrivileges() && !options.noNewPrivileges()) {
            throw violation("no-new-privileges off weakens isolation");
        }
        if (!options.capDrop().contains("ALL") && !options.capDrop().containsAll(defaults.capDrop())) {
            throw violation("dropping " + options.capDrop() + " keeps capabilities the defaults drop ("
                    + defaults.capDrop() + ")");
        }
        options.tmpfs().keySet().forEach(path -> {
            if (!path.startsWith("/") || path.contains("..") || path.equals("/")) {
                throw violation("tmpfs needs an absolute path below /, got " + path);
            }
        });
        options.namePrefix().ifPresent(DockerRunArgs::containerName);
    }

    private static PolicyViolationException violation(String what) {
        return new PolicyViolationException("docker options: " + what);
    }
}
