package io.agentexec.sandbox;

import java.util.List;
import java.util.Optional;

/**
 * The seed's {@code SecureCodeExecutor.validate_code}: refuses code containing any configured
 * pattern. A plain substring check, as in AG2's example: it is a policy gate for well-meaning
 * agents, not a security boundary (the sandbox is).
 */
public final class CodeValidator {
    private final List<String> forbiddenPatterns;

    public CodeValidator(List<String> forbiddenPatterns) {
        this.forbiddenPatterns = List.copyOf(forbiddenPatterns);
    }

    /** The first forbidden pattern the code contains, if any. */
    public Optional<String> firstViolation(String code) {
        return forbiddenPatterns.stream().filter(code::contains).findFirst();
    }
}
