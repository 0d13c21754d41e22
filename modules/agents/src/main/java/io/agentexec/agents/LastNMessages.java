package io.agentexec.agents;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;

/**
 * AG2's {@code last_n_messages}: how many of the latest messages are scanned for code. {@link Auto}
 * means the messages received since this agent last spoke, AG2's default.
 */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
@JsonSubTypes({
        @JsonSubTypes.Type(value = LastNMessages.Count.class, name = "count"),
        @JsonSubTypes.Type(value = LastNMessages.Auto.class, name = "auto")})
public sealed interface LastNMessages extends AgentsSerializable {
    record Count(int value) implements LastNMessages {
        public Count {
            if (value < 0) {
                throw new AgentConfigException("code_execution_config.last_n_messages must not be negative, got " + value);
            }
        }
    }

    record Auto() implements LastNMessages {
    }

    static LastNMessages auto() {
        return new Auto();
    }

    static LastNMessages of(int n) {
        return new Count(n);
    }
}
