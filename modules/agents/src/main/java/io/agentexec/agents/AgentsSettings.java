package io.agentexec.agents;

import com.typesafe.config.Config;
import io.agentexec.agents.entity.AgentEntity;
import io.agentexec.agents.llm.RetryPolicy;
import java.time.Duration;

/** Everything this module reads from {@code agentexec.agents} (see its reference.conf). */
public record AgentsSettings(RetryPolicy llmRetry, int llmThreads, int maxConsecutiveAutoReply,
                             Duration humanInputTimeout, String resourceProfile, int maxRetries,
                             String assistantSystemMessage, boolean unsafeLocal, int executionThreads,
                             AgentEntity.Limits agentLimits, Duration minBackoff,
                             Duration maxBackoff, Duration askTimeout, Duration pollInterval,
                             Duration workspaceRetention) {

    public static AgentsSettings fromConfig(Config root) {
        Config c = root.getConfig("agentexec.agents");
        Config d = c.getConfig("defaults");
        Config a = c.getConfig("agent");
        Duration min = c.getDuration("entity-backoff.min");
        Duration max = c.getDuration("entity-backoff.max");
        return new AgentsSettings(
                RetryPolicy.fromConfig(c.getConfig("llm.retry")),
                c.getInt("llm.threads"),
                d.getInt("max-consecutive-auto-reply"),
                d.getDuration("human-input-timeout"),
                d.getString("resource-profile"),
                d.getInt("max-retries"),
                d.getString("assistant-system-message"),
                c.getBoolean("execution.unsafe-local"),
                c.getInt("execution.threads"),
                new AgentEntity.Limits(a.getInt("retry-history"), min, max),
                min, max,
                c.getDuration("ask-timeout"),
                c.getDuration("poll-interval"),
                c.getDuration("workspace-retention"));
    }
}
