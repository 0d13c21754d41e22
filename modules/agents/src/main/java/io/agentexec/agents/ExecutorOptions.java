package io.agentexec.agents;

import io.agentexec.cluster.executors.CodePolicy;
import io.agentexec.cluster.executors.SeedExecutors;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * What the seed builds by subclassing UserProxyAgent, as plain options of an executing agent. What they mean is
 * defined once, below the agents ({@link io.agentexec.cluster.executors}): the gateway's requests use the same.
 *
 * @param forbiddenPatterns SecureCodeExecutor: code containing one of these is refused (POLICY_VIOLATION) unrun
 * @param resourceProfile   OptimizedExecutor: a profile of {@code agentexec.executors.profiles}
 * @param cacheResults      CachingExecutor: identical code, language, image and limits answer from the cache
 * @param maxRetries        RobustCodeExecutor: chats of {@code executeCodeWithRetry}
 * @param policy            SecureCodeExecutor by name: a preset of {@code agentexec.executors.policies} ({@code secure}:
 *                          the seed's two lists, each with its own words), checked before the forbidden patterns
 * @param retries           the most attempts of each failing execution (1: none again), with the history kept
 */
public record ExecutorOptions(List<String> forbiddenPatterns, String resourceProfile, boolean cacheResults,
                              int maxRetries, Optional<String> policy, Optional<Integer> retries)
        implements AgentsSerializable {
    public ExecutorOptions {
        forbiddenPatterns = List.copyOf(forbiddenPatterns);
        Objects.requireNonNull(resourceProfile, "resourceProfile");
        // absent in agents defined before these options existed
        policy = policy == null ? Optional.empty() : policy;
        retries = retries == null ? Optional.empty() : retries;
        if (forbiddenPatterns.stream().anyMatch(String::isEmpty)) {
            throw new AgentConfigException("forbidden_patterns must not contain an empty pattern");
        }
        if (maxRetries < 1) {
            throw new AgentConfigException("max_retries must be at least 1, got " + maxRetries);
        }
        retries.ifPresent(n -> {
            if (n < 1) {
                throw new AgentConfigException("retries must be at least 1 (attempts), got " + n);
            }
        });
    }

    public ExecutorOptions(List<String> forbiddenPatterns, String resourceProfile, boolean cacheResults, int maxRetries) {
        this(forbiddenPatterns, resourceProfile, cacheResults, maxRetries, Optional.empty(), Optional.empty());
    }

    public static ExecutorOptions defaults() {
        return new ExecutorOptions(List.of(), "medium", false, 3);
    }

    /**
     * The seed's SecureCodeExecutor lists as plain patterns (forbidden patterns, then {@code import X} / {@code from X}
     * for its network imports); {@code policy("secure")} is the same with the seed's own words for the network ones.
     */
    public static List<String> seedSecurePatterns() {
        List<String> all = new ArrayList<>(CodePolicy.SEED_FORBIDDEN_PATTERNS);
        CodePolicy.SEED_NETWORK_IMPORTS.forEach(m -> {
            all.add("import " + m);
            all.add("from " + m);
        });
        return List.copyOf(all);
    }

    /** These options as the shared executors take them, for agent {@code agent}. */
    public io.agentexec.cluster.executors.ExecutorOptions shared(String agent, SeedExecutors executors) {
        io.agentexec.cluster.executors.ExecutorOptions o = io.agentexec.cluster.executors.ExecutorOptions.none()
                .withExecutor(agent).withProfile(resourceProfile).withCache(cacheResults);
        Optional<CodePolicy> code = policy.map(executors::policy);
        if (!forbiddenPatterns.isEmpty()) {
            CodePolicy patterns = CodePolicy.patterns(forbiddenPatterns);
            code = Optional.of(code.map(p -> {
                List<CodePolicy.Rule> rules = new ArrayList<>(p.rules());
                rules.addAll(patterns.rules());
                return new CodePolicy(p.name(), rules);
            }).orElse(patterns));
        }
        if (code.isPresent()) {
            o = o.withPolicy(code.get());
        }
        if (retries.isPresent()) {
            o = o.withRetries(retries.get());
        }
        return o;
    }

    public ExecutorOptions withForbiddenPatterns(List<String> value) {
        return new ExecutorOptions(value, resourceProfile, cacheResults, maxRetries, policy, retries);
    }

    public ExecutorOptions withResourceProfile(String value) {
        return new ExecutorOptions(forbiddenPatterns, value, cacheResults, maxRetries, policy, retries);
    }

    public ExecutorOptions withCacheResults(boolean value) {
        return new ExecutorOptions(forbiddenPatterns, resourceProfile, value, maxRetries, policy, retries);
    }

    public ExecutorOptions withMaxRetries(int value) {
        return new ExecutorOptions(forbiddenPatterns, resourceProfile, cacheResults, value, policy, retries);
    }

    public ExecutorOptions withPolicy(String value) {
        return new ExecutorOptions(forbiddenPatterns, resourceProfile, cacheResults, maxRetries, Optional.of(value), retries);
    }

    public ExecutorOptions withRetries(int value) {
        return new ExecutorOptions(forbiddenPatterns, resourceProfile, cacheResults, maxRetries, policy, Optional.of(value));
    }
}
