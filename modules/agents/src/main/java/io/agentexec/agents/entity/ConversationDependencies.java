package io.agentexec.agents.entity;

import io.agentexec.agents.llm.LlmClients;
import java.time.Duration;
import java.util.concurrent.Executor;

/**
 * What a conversation entity uses on the node it runs on: live objects, never persisted.
 *
 * @param blocking           threads for model calls, which block
 * @param workspaceRetention how long an ended chat's workspaces are kept for their files (0: closed at the end)
 */
public record ConversationDependencies(LlmClients llm, ExecutionPipeline pipeline, Executor blocking,
                                       Duration minBackoff, Duration maxBackoff, Duration workspaceRetention) {
}
