package io.agentexec.cluster.policy;

import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.language.LanguageTable;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.options.OptionRules;
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
    private final OptionRules options;

    public JobPolicy(ExecutionPolicy policy, EngineSettings engine) {
        this.policy = Objects.requireNonNull(policy, "policy");
        this.languages = engine.languages();
        this.options = engine.optionRules();
    }

    public ExecutionPolicy policy() {
        return policy;
    }

    /** A run's limits and image. */
    public void checkRequest(ExecutionRequest request) {
        policy.check(request, languages);
    }

    /** A sandbox's limits, image and options (the engine's {@link OptionRules}: nothing weaker than its hardening). */
    public void checkSandbox(SandboxSpec spec) {
        policy.checkSandbox(spec.image(), spec.limits(), languages);
        spec.docker().ifPresent(options::check);
    }
}
