package io.agentexec.cluster.executors;

import com.typesafe.config.Config;
import io.agentexec.sandbox.model.InvalidRequestException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code agentexec.executors} (the cluster module's reference.conf): the code-policy presets, the profiles, and the
 * bounds of retries, tests, the cache and the statistics.
 *
 * @param policies        named code policies a request may pick ({@code secure}: the seed's two lists)
 * @param maxRetries      the most attempts a request may ask for
 * @param maxTests        the most test cases of one request (one run each)
 * @param cacheTtl        how long a cached result answers
 * @param cacheMaxBytes   results whose output is larger are not cached (the cache is in the journal)
 * @param statsSamples    runs a tenant's statistics keep (oldest dropped first)
 * @param snapshotEvery   events between snapshots of a tenant's statistics
 * @param askTimeout      how long an entity of the cache or the statistics is waited for
 * @param statsFlush      how long a node gathers its runs' samples before it records them, in one event per tenant
 */
public record ExecutorSettings(Map<String, CodePolicy> policies, int maxRetries, int maxTests, Duration cacheTtl,
                               long cacheMaxBytes, int statsSamples, int snapshotEvery, Duration askTimeout,
                               Duration statsFlush) {

    public ExecutorSettings {
        policies = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(policies));
        positive("max-retries", maxRetries);
        positive("max-tests", maxTests);
        positive("stats.samples", statsSamples);
        positive("stats.snapshot-every", snapshotEvery);
        if (statsFlush.isNegative() || statsFlush.isZero()) {
            throw new IllegalArgumentException("agentexec.executors.stats.flush-interval must be positive, got " + statsFlush);
        }
        if (cacheTtl.isNegative() || cacheTtl.isZero()) {
            throw new IllegalArgumentException("agentexec.executors.cache.ttl must be positive, got " + cacheTtl);
        }
    }

    private static void positive(String key, long value) {
        if (value < 1) {
            throw new IllegalArgumentException("agentexec.executors." + key + " must be at least 1, got " + value);
        }
    }

    public static ExecutorSettings fromConfig(Config root) {
        Config c = root.getConfig("agentexec.executors");
        Map<String, CodePolicy> policies = new LinkedHashMap<>();
        Config p = c.getConfig("policies");
        for (String name : new java.util.TreeSet<>(p.root().keySet())) {
            Config one = p.getConfig("\"" + name + "\"");
            policies.put(name, CodePolicy.of(name, list(one, "unsafe"), list(one, "network")));
        }
        return new ExecutorSettings(policies, c.getInt("max-retries"), c.getInt("max-tests"),
                c.getDuration("cache.ttl"), c.getBytes("cache.max-output-bytes"), c.getInt("stats.samples"),
                c.getInt("stats.snapshot-every"), root.getDuration("agentexec.cluster.ask-timeout"),
                c.getDuration("stats.flush-interval"));
    }

    private static List<String> list(Config c, String key) {
        return c.hasPath(key) ? c.getStringList(key) : List.of();
    }

    /** The preset {@code name}; {@link InvalidRequestException} naming the field and the known presets otherwise. */
    public CodePolicy policy(String name) {
        CodePolicy p = policies.get(name);
        if (p == null) {
            throw new InvalidRequestException("policy: unknown policy '" + name + "'; known: "
                    + String.join(", ", policies.keySet()) + " (or a list of patterns)");
        }
        return p;
    }

    /** Refuses options above the bounds, naming the field. */
    public void check(ExecutorOptions options) {
        if (options.attempts() > maxRetries) {
            throw new InvalidRequestException("retries: at most " + maxRetries + " attempts; got " + options.attempts());
        }
        options.tests().ifPresent(t -> {
            if (t.size() > maxTests) {
                throw new InvalidRequestException("tests: at most " + maxTests + " cases; got " + t.size());
            }
        });
    }
}
