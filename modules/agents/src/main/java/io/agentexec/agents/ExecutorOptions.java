package io.agentexec.agents;

import java.util.List;
import java.util.Objects;

/**
 * What the seed builds by subclassing UserProxyAgent, as plain options of an executing agent.
 *
 * @param forbiddenPatterns SecureCodeExecutor: code containing one of these is refused (POLICY_VIOLATION) unrun
 * @param resourceProfile   OptimizedExecutor: a profile of {@code agentexec.agents.resource-profiles}
 * @param cacheResults      CachingExecutor: identical code, language, image and limits answer from the cache
 * @param maxRetries        RobustCodeExecutor: attempts of {@code executeCodeWithRetry}
 */
public record ExecutorOptions(List<String> forbiddenPatterns, String resourceProfile, boolean cacheResults,
                              int maxRetries) implements AgentsSerializable {
    public ExecutorOptions {
        forbiddenPatterns = List.copyOf(forbiddenPatterns);
        Objects.requireNonNull(resourceProfile, "resourceProfile");
        if (forbiddenPatterns.stream().anyMatch(String::isEmpty)) {
            throw new AgentConfigException("forbidden_patterns must not contain an empty pattern");
        }
        if (maxRetries < 1) {
            throw new AgentConfigException("max_retries must be at least 1, got " + maxRetries);
        }
    }

    public static ExecutorOptions defaults() {
        return new ExecutorOptions(List.of(), "medium", false, 3);
    }

    /** The seed's SecureCodeExecutor lists, forbidden patterns and network imports together. */
    public static List<String> seedSecurePatterns() {
        return List.of("import os", "import subprocess", "import sys", "exec(", "eval(", "open(", "file(",
                "__import__", "globals()", "locals()",
                "import requests", "from requests", "import urllib", "from urllib", "import socket", "from socket",
                "import http", "from http");
    }

    public ExecutorOptions withForbiddenPatterns(List<String> value) {
        return new ExecutorOptions(value, resourceProfile, cacheResults, maxRetries);
    }

    public ExecutorOptions withResourceProfile(String value) {
        return new ExecutorOptions(forbiddenPatterns, value, cacheResults, maxRetries);
    }

    public ExecutorOptions withCacheResults(boolean value) {
        return new ExecutorOptions(forbiddenPatterns, resourceProfile, value, maxRetries);
    }

    public ExecutorOptions withMaxRetries(int value) {
        return new ExecutorOptions(forbiddenPatterns, resourceProfile, cacheResults, value);
    }
}
