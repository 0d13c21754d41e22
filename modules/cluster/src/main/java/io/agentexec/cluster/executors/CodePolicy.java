package io.agentexec.cluster.executors;

import io.agentexec.sandbox.model.CodeBlock;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * The seed's {@code SecureCodeExecutor.validate_code}: rules a block's code is checked against before anything runs; the
 * first rule it breaks refuses the whole request ({@code POLICY_VIOLATION}) with the seed's message. A plain
 * substring check, as in the seed: a gate for well-meaning agents, not a security boundary (the sandbox is).
 *
 * @param name  the preset's name ({@code secure}, an operator's), or {@code patterns} for a request's own list
 * @param rules checked in order
 */
public record CodePolicy(String name, List<Rule> rules) {

    /** What a rule is about, and the seed's words for it. */
    public enum Kind {
        /** {@code pattern in code}: "Potentially unsafe code detected: PATTERN". */
        UNSAFE("Potentially unsafe code detected: "),
        /** {@code f"import {m}" in code or f"from {m}" in code}: "Network access not allowed: MODULE". */
        NETWORK("Network access not allowed: ");

        private final String prefix;

        Kind(String prefix) {
            this.prefix = prefix;
        }

        public String prefix() {
            return prefix;
        }
    }

    /** One rule: a substring (UNSAFE) or a module name (NETWORK). */
    public record Rule(Kind kind, String pattern) {
        public Rule {
            Objects.requireNonNull(kind, "kind");
            Objects.requireNonNull(pattern, "pattern");
            if (pattern.isEmpty()) {
                throw new IllegalArgumentException("a policy pattern must not be empty");
            }
        }

        boolean brokenBy(String code) {
            return switch (kind) {
                case UNSAFE -> code.contains(pattern);
                case NETWORK -> code.contains("import " + pattern) || code.contains("from " + pattern);
            };
        }

        /** The seed's message for code that breaks this rule. */
        public String message() {
            return kind.prefix() + pattern;
        }
    }

    /** The rule broken, the seed's message, and the policy it belongs to. */
    public record Violation(String policy, Rule rule) {
        public String message() {
            return rule.message();
        }
    }

    /** The seed's SecureCodeExecutor's forbidden_patterns, in its order. */
    public static final List<String> SEED_FORBIDDEN_PATTERNS = List.of("import os", "import subprocess", "import sys",
            "exec(", "eval(", "open(", "file(", "__import__", "globals()", "locals()");
    /** The seed's SecureCodeExecutor's network_imports. */
    public static final List<String> SEED_NETWORK_IMPORTS = List.of("requests", "urllib", "socket", "http");
    /** A request's own list of patterns is a policy of this name. */
    public static final String PATTERNS = "patterns";

    public CodePolicy {
        Objects.requireNonNull(name, "name");
        rules = List.copyOf(rules);
    }

    /** The seed's two lists: its forbidden patterns first, then its network imports (as validate_code checks them). */
    public static CodePolicy seedSecure(String name) {
        return of(name, SEED_FORBIDDEN_PATTERNS, SEED_NETWORK_IMPORTS);
    }

    /** A policy of unsafe patterns (checked first) and network modules. */
    public static CodePolicy of(String name, List<String> unsafe, List<String> network) {
        List<Rule> rules = new java.util.ArrayList<>();
        unsafe.forEach(p -> rules.add(new Rule(Kind.UNSAFE, p)));
        network.forEach(m -> rules.add(new Rule(Kind.NETWORK, m)));
        return new CodePolicy(name, rules);
    }

    /** A request's (or an agent's) own forbidden patterns, each refused with the seed's "Potentially unsafe code" words. */
    public static CodePolicy patterns(List<String> patterns) {
        return of(PATTERNS, patterns, List.of());
    }

    /** The first rule a block breaks, blocks in order, rules in order. */
    public Optional<Violation> check(List<CodeBlock> blocks) {
        for (CodeBlock block : blocks) {
            for (Rule rule : rules) {
                if (rule.brokenBy(block.code())) {
                    return Optional.of(new Violation(name, rule));
                }
            }
        }
        return Optional.empty();
    }

    /** The unsafe patterns, in order (what the seed calls forbidden_patterns). */
    public List<String> unsafePatterns() {
        return rules.stream().filter(r -> r.kind() == Kind.UNSAFE).map(Rule::pattern).toList();
    }

    /** The network modules, in order. */
    public List<String> networkModules() {
        return rules.stream().filter(r -> r.kind() == Kind.NETWORK).map(Rule::pattern).toList();
    }
}
