package io.agentexec.agents;

import java.time.Duration;
import java.util.Objects;
import java.util.Optional;

/**
 * Everything that makes an agent behave as it does: what AG2 passes to ConversableAgent's constructor.
 * Immutable and serializable: it is the state of an agent's entity and is copied into each chat it
 * takes part in, so that a chat's behaviour never changes halfway.
 *
 * @param llmConfig          empty: AG2's {@code llm_config=False}, the agent never calls a model
 * @param codeExecution      empty: AG2's {@code code_execution_config=False}
 * @param humanInputTimeout  how long a due human reply is awaited before AG2's NO HUMAN INPUT RECEIVED.
 * @param defaultAutoReply   sent when no other reply applies (AG2's UserProxyAgent sends "")
 */
public record AgentDefinition(Kind kind, String name, String systemMessage, Optional<LlmConfig> llmConfig,
                              HumanInputMode humanInputMode, Optional<CodeExecutionConfig> codeExecution,
                              int maxConsecutiveAutoReply, TerminationCheck terminationCheck,
                              ExecutorOptions executorOptions, Duration humanInputTimeout, String defaultAutoReply)
        implements AgentsSerializable {

    public enum Kind { ASSISTANT, USER_PROXY }

    public AgentDefinition {
        Objects.requireNonNull(kind, "kind");
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(systemMessage, "systemMessage");
        Objects.requireNonNull(llmConfig, "llmConfig");
        Objects.requireNonNull(humanInputMode, "humanInputMode");
        Objects.requireNonNull(codeExecution, "codeExecution");
        Objects.requireNonNull(terminationCheck, "terminationCheck");
        Objects.requireNonNull(executorOptions, "executorOptions");
        Objects.requireNonNull(humanInputTimeout, "humanInputTimeout");
        Objects.requireNonNull(defaultAutoReply, "defaultAutoReply");
        if (!name.matches("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")) {
            throw new AgentConfigException("name must be 1-64 letters, digits, '_', '.' or '-', got '" + name + "'");
        }
        if (maxConsecutiveAutoReply < 0) {
            throw new AgentConfigException("max_consecutive_auto_reply must not be negative, got " + maxConsecutiveAutoReply);
        }
        if (humanInputTimeout.isNegative() || humanInputTimeout.isZero()) {
            throw new AgentConfigException("human_input_timeout must be positive, got " + humanInputTimeout);
        }
    }
}
