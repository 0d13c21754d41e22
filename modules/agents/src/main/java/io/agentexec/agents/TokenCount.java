package io.agentexec.agents;

/** Tokens an LLM call used, as the endpoint reported them (zero for messages no model wrote). */
public record TokenCount(long input, long output) implements AgentsSerializable {
    public static final TokenCount NONE = new TokenCount(0, 0);

    public TokenCount {
        if (input < 0 || output < 0) {
            throw new IllegalArgumentException("token counts must not be negative");
        }
    }

    public long total() {
        return input + output;
    }

    public TokenCount plus(TokenCount other) {
        return new TokenCount(input + other.input, output + other.output);
    }
}
