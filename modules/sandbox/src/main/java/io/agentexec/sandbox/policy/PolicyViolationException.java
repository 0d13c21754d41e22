package io.agentexec.sandbox.policy;

import io.agentexec.sandbox.model.InvalidRequestException;

/**
 * A run the operator's policy does not allow (a limit above its ceiling, an image not allowed). An
 * {@link InvalidRequestException}, so every edge that already answers bad input answers this too; paths
 * that report results instead give it the verdict POLICY_VIOLATION.
 */
public final class PolicyViolationException extends InvalidRequestException {
    public PolicyViolationException(String message) {
        super(message);
    }
}
