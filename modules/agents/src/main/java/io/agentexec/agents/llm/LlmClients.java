package io.agentexec.agents.llm;

import io.agentexec.agents.LlmConfig;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** One client per distinct configuration on this node; clients hold connection pools. */
public final class LlmClients {
    private final RetryPolicy retry;
    private final Map<LlmConfig, LlmClient> clients = new ConcurrentHashMap<>();

    public LlmClients(RetryPolicy retry) {
        this.retry = retry;
    }

    public LlmClient clientFor(LlmConfig config) {
        return clients.computeIfAbsent(config, c -> switch (c.kind()) {
            case OPENAI_COMPATIBLE -> new OpenAiCompatibleClient(c, retry);
            case REPLAY -> new ReplayModel(c);
        });
    }
}
