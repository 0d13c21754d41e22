package io.agentexec.agents;

import java.util.Objects;
import java.util.Optional;
import java.util.function.UnaryOperator;

/**
 * AG2's AssistantAgent: answers with its model, never asks a human, runs no code. Made by
 * {@link AgentRuntime#assistantAgent}.
 */
public final class AssistantAgent implements Agent {
    private final AgentDefinition definition;
    private final AgentRuntime runtime;

    AssistantAgent(AgentDefinition definition, AgentRuntime runtime) {
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

    /** Options beyond name, system message and llm_config, AG2's keyword arguments. */
    public static final class Options {
        private Optional<Integer> maxConsecutiveAutoReply = Optional.empty();
        private TerminationCheck terminationCheck = TerminationCheck.defaultCheck();

        public Options maxConsecutiveAutoReply(int value) {
            maxConsecutiveAutoReply = Optional.of(value);
            return this;
        }

        public Options isTerminationMsg(TerminationCheck value) {
            terminationCheck = Objects.requireNonNull(value, "is_termination_msg");
            return this;
        }
    }

    static AgentDefinition define(String name, Optional<String> systemMessage, LlmConfig llmConfig,
                                  UnaryOperator<Options> options, AgentsSettings settings) {
        Objects.requireNonNull(llmConfig, "llm_config");
        Options o = options.apply(new Options());
        return new AgentDefinition(AgentDefinition.Kind.ASSISTANT, name,
                systemMessage.orElse(settings.assistantSystemMessage()), Optional.of(llmConfig), HumanInputMode.NEVER,
                Optional.empty(), o.maxConsecutiveAutoReply.orElse(settings.maxConsecutiveAutoReply()),
                o.terminationCheck,
                ExecutorOptions.defaults().withResourceProfile(settings.resourceProfile()).withMaxRetries(settings.maxRetries()),
                settings.humanInputTimeout(), "");
    }
}
