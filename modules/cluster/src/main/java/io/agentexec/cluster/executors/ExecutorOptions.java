package io.agentexec.cluster.executors;

import com.fasterxml.jackson.annotation.JsonIgnore;
import io.agentexec.cluster.CborSerializable;
import io.agentexec.sandbox.model.InvalidRequestException;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The seed's executor subclasses as options of one request, or of a sandbox or a chat's proxy (a request's own
 * options win over its sandbox's, field by field). Empty means "not said": {@link #attempts()} is then 1, the cache
 * off, no policy, no profile, no tests.
 *
 * @param executor the executor's name in the statistics (an agent's name for a chat's code; a request may name one)
 * @param policy   SecureCodeExecutor: the code rules checked before anything runs
 * @param retries  RobustCodeExecutor: the most attempts of a failing run (the first included)
 * @param profile  OptimizedExecutor: a profile of {@link ExecutorProfiles} (applied where the request is built)
 * @param cache    CachingExecutor: an identical request of the same tenant answers from the cluster's cache
 * @param tests    TestingExecutor: cases to run the code against
 */
public record ExecutorOptions(Optional<String> executor, Optional<CodePolicy> policy, Optional<Integer> retries,
                              Optional<String> profile, Optional<Boolean> cache, Optional<TestSuite> tests)
        implements CborSerializable {

    /** An executor name: a short label, bounded so that statistics keep few, readable keys. */
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._:-]{0,63}");

    public ExecutorOptions {
        // absent in documents written before a field existed
        executor = executor == null ? Optional.empty() : executor;
        policy = policy == null ? Optional.empty() : policy;
        retries = retries == null ? Optional.empty() : retries;
        profile = profile == null ? Optional.empty() : profile;
        cache = cache == null ? Optional.empty() : cache;
        tests = tests == null ? Optional.empty() : tests;
        executor.ifPresent(n -> {
            if (!NAME.matcher(n).matches()) {
                throw new InvalidRequestException("executor: a name is 1 to 64 letters, digits, '.', '_', ':' or '-', "
                        + "starting with a letter or digit");
            }
        });
        retries.ifPresent(n -> {
            if (n < 1) {
                throw new InvalidRequestException("retries: the most attempts of a failing run, at least 1; got " + n);
            }
        });
    }

    public static ExecutorOptions none() {
        return new ExecutorOptions(Optional.empty(), Optional.empty(), Optional.empty(), Optional.empty(),
                Optional.empty(), Optional.empty());
    }

    /** The most attempts of a failing run (1: no retry). */
    @JsonIgnore
    public int attempts() {
        return retries.orElse(1);
    }

    @JsonIgnore
    public boolean caching() {
        return cache.orElse(false);
    }

    /** These options with {@code override}'s said fields over them (a request's over its sandbox's). */
    public ExecutorOptions overriddenBy(ExecutorOptions override) {
        Objects.requireNonNull(override, "override");
        return new ExecutorOptions(override.executor.or(() -> executor), override.policy.or(() -> policy),
                override.retries.or(() -> retries), override.profile.or(() -> profile), override.cache.or(() -> cache),
                override.tests.or(() -> tests));
    }

    public ExecutorOptions withExecutor(String value) {
        return new ExecutorOptions(Optional.of(value), policy, retries, profile, cache, tests);
    }

    public ExecutorOptions withPolicy(CodePolicy value) {
        return new ExecutorOptions(executor, Optional.of(value), retries, profile, cache, tests);
    }

    public ExecutorOptions withRetries(int value) {
        return new ExecutorOptions(executor, policy, Optional.of(value), profile, cache, tests);
    }

    public ExecutorOptions withProfile(String value) {
        return new ExecutorOptions(executor, policy, retries, Optional.of(value), cache, tests);
    }

    public ExecutorOptions withCache(boolean value) {
        return new ExecutorOptions(executor, policy, retries, profile, Optional.of(value), tests);
    }

    public ExecutorOptions withTests(TestSuite value) {
        return new ExecutorOptions(executor, policy, retries, profile, cache, Optional.of(value));
    }

    /** Whether anything is said at all (a request without executor options takes the plain path). */
    @JsonIgnore
    public boolean isEmpty() {
        return executor.isEmpty() && policy.isEmpty() && retries.isEmpty() && profile.isEmpty() && cache.isEmpty()
                && tests.isEmpty();
    }
}
