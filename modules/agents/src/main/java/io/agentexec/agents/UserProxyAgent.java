package io.agentexec.agents;

import io.agentexec.agents.entity.AgentEntity;
import io.agentexec.agents.entity.ExecutionPipeline;
import io.agentexec.cluster.executors.SeedExecutors;
import io.agentexec.cluster.executors.StatsReport;
import io.agentexec.cluster.executors.TestSuite;
import io.agentexec.sandbox.model.InvalidRequestException;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * AG2's UserProxyAgent: stands in for the human, runs the code it is sent in its sandbox and
 * answers with the result. The seed's UserProxyAgent subclasses are methods and options here:
 * {@link #executeCode} (with the code policy, cache, resource profile, retries), {@link #runTests}
 * (TestingExecutor), {@link #executeCodeWithRetry} (RobustCodeExecutor), {@link #executionStatistics}: each defined
 * once in {@link io.agentexec.cluster.executors}, as the gateway's requests use them.
 * Made by {@link AgentRuntime#userProxyAgent}.
 */
public final class UserProxyAgent implements Agent {
    private final AgentDefinition definition;
    private final AgentRuntime runtime;

    UserProxyAgent(AgentDefinition definition, AgentRuntime runtime) {
        this.definition = Objects.requireNonNull(definition, "definition");
        this.runtime = Objects.requireNonNull(runtime, "runtime");
    }

    @Override
    public AgentDefinition definition() {
        return definition;
    }

    @Override
    public AgentRuntime runtime() {
        return runtime;
    }

    /** The seed's execute_code: runs code in this agent's workspace, outside any chat. */
    public ExecutionPipeline.Outcome executeCode(String language, String code) {
        return runtime.executeCode(this, language, code, definition.executorOptions().resourceProfile());
    }

    /** The seed's execute_with_monitoring(code, complexity): the same with a resource profile for this call. */
    public ExecutionPipeline.Outcome executeCode(String language, String code, String complexity) {
        return runtime.executeCode(this, language, code, complexity);
    }

    /** The seed's TestingExecutor.run_tests: each test case appends a boolean to {@code test_results}. */
    public TestRun runTests(String code, List<String> testCases) {
        return runtime.runTests(this, "python", code, assertions(testCases));
    }

    /** Judge0's style: the code run once per case with the case's stdin, its stdout compared with the expected one. */
    public TestRun runTestCases(String language, String code, List<TestSuite.IoCase> cases) {
        try {
            return runtime.runTests(this, language, code, new TestSuite.IoCases(cases));
        } catch (InvalidRequestException e) {
            throw new AgentConfigException("test_cases: " + e.getMessage());
        }
    }

    private static TestSuite assertions(List<String> testCases) {
        try {
            return new TestSuite.Assertions(testCases);
        } catch (InvalidRequestException e) {
            throw new AgentConfigException("test_cases must not be empty or blank (" + e.getMessage() + ")");
        }
    }

    /** The seed's RobustCodeExecutor.execute_code_with_retry. */
    public RetryOutcome executeCodeWithRetry(String code, Agent assistant) {
        return RetryOutcome.run(this, code, assistant);
    }

    /** The seed's execution_stats of this agent (its tenant's statistics, this agent's runs), by profile. */
    public StatsReport executionStatistics() {
        return runtime.executionStatistics(name());
    }

    /** The seed's execution_history of executeCodeWithRetry, kept by this agent's entity. */
    public List<AgentEntity.RetryAttempt> executionHistory() {
        return runtime.retryHistory(name());
    }

    /** AG2's keyword arguments of UserProxyAgent, and the options of the seed's executor subclasses. */
    public static final class Options {
        private HumanInputMode humanInputMode = HumanInputMode.ALWAYS;
        private Optional<CodeExecutionConfig> codeExecution = Optional.of(CodeExecutionConfig.defaults());
        private Optional<LlmConfig> llmConfig = Optional.empty();
        private Optional<Integer> maxConsecutiveAutoReply = Optional.empty();
        private TerminationCheck terminationCheck = TerminationCheck.defaultCheck();
        private String systemMessage = "";
        private Optional<Duration> humanInputTimeout = Optional.empty();
        private String defaultAutoReply = "";
        private Optional<List<String>> forbiddenPatterns = Optional.empty();
        private Optional<String> resourceProfile = Optional.empty();
        private boolean cacheResults;
        private Optional<Integer> maxRetries = Optional.empty();
        private Optional<String> policy = Optional.empty();
        private Optional<Integer> retries = Optional.empty();

        public Options humanInputMode(HumanInputMode value) {
            humanInputMode = Objects.requireNonNull(value, "human_input_mode");
            return this;
        }

        public Options humanInputMode(String value) {
            return humanInputMode(HumanInputMode.parse(value));
        }

        /** AG2's dict, checked key by key. */
        public Options codeExecutionConfig(Map<String, ?> value) {
            codeExecution = Optional.of(CodeExecutionConfig.fromMap(value));
            return this;
        }

        public Options codeExecutionConfig(CodeExecutionConfig value) {
            codeExecution = Optional.of(value);
            return this;
        }

        /** AG2's {@code code_execution_config=False}. */
        public Options noCodeExecution() {
            codeExecution = Optional.empty();
            return this;
        }

        public Options llmConfig(LlmConfig value) {
            llmConfig = Optional.of(value);
            return this;
        }

        public Options maxConsecutiveAutoReply(int value) {
            maxConsecutiveAutoReply = Optional.of(value);
            return this;
        }

        public Options isTerminationMsg(TerminationCheck value) {
            terminationCheck = Objects.requireNonNull(value, "is_termination_msg");
            return this;
        }

        public Options systemMessage(String value) {
            systemMessage = Objects.requireNonNull(value, "system_message");
            return this;
        }

        public Options humanInputTimeout(Duration value) {
            humanInputTimeout = Optional.of(value);
            return this;
        }

        public Options defaultAutoReply(String value) {
            defaultAutoReply = Objects.requireNonNull(value, "default_auto_reply");
            return this;
        }

        /** SecureCodeExecutor's forbidden_patterns ({@link ExecutorOptions#seedSecurePatterns()} is the seed's list). */
        public Options forbiddenPatterns(List<String> value) {
            forbiddenPatterns = Optional.of(List.copyOf(value));
            return this;
        }

        /** OptimizedExecutor's complexity: a profile of agentexec.agents.resource-profiles. */
        public Options resourceProfile(String value) {
            resourceProfile = Optional.of(value);
            return this;
        }

        /** CachingExecutor. */
        public Options cacheResults(boolean value) {
            cacheResults = value;
            return this;
        }

        /** RobustCodeExecutor's max_retries (chats of executeCodeWithRetry). */
        public Options maxRetries(int value) {
            maxRetries = Optional.of(value);
            return this;
        }

        /** SecureCodeExecutor by name: a preset of agentexec.executors.policies ("secure": the seed's lists and words). */
        public Options policy(String value) {
            policy = Optional.of(value);
            return this;
        }

        /** The most attempts of each failing execution (every attempt kept in the execution's record). */
        public Options retries(int value) {
            retries = Optional.of(value);
            return this;
        }
    }

    static AgentDefinition define(String name, UnaryOperator<Options> options, AgentsSettings settings,
                                  SeedExecutors executors) {
        Options o = options.apply(new Options());
        String profile = o.resourceProfile.orElse(settings.resourceProfile());
        if (!executors.profiles().has(profile)) {
            throw new AgentConfigException("resource_profile: unknown profile '" + profile + "'; known: "
                    + String.join(", ", executors.profiles().names()));
        }
        ExecutorOptions executor = new ExecutorOptions(o.forbiddenPatterns.orElse(List.of()), profile, o.cacheResults,
                o.maxRetries.orElse(settings.maxRetries()), o.policy, o.retries);
        try {
            executors.settings().check(executor.shared(name, executors));
        } catch (InvalidRequestException e) {
            throw new AgentConfigException(e.getMessage());
        }
        return new AgentDefinition(AgentDefinition.Kind.USER_PROXY, name, o.systemMessage, o.llmConfig,
                o.humanInputMode, o.codeExecution, o.maxConsecutiveAutoReply.orElse(settings.maxConsecutiveAutoReply()),
                o.terminationCheck, executor, o.humanInputTimeout.orElse(settings.humanInputTimeout()),
                o.defaultAutoReply);
    }
}
