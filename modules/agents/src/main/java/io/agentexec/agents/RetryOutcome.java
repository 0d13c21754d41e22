package io.agentexec.agents;

import io.agentexec.agents.entity.AgentEntity;
import io.agentexec.sandbox.model.Verdict;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;

/**
 * The seed's RobustCodeExecutor.execute_code_with_retry: up to max_retries chats of at most
 * {@link #TURNS_PER_ATTEMPT} turns asking the assistant to run and debug the code; success is the
 * chat's last execution ending with exit code 0 (the engine's verdict, not a search for the word
 * "error"). If none succeeds, one more chat asks for debugging help with the history.
 */
public record RetryOutcome(boolean succeeded, ChatResult result, List<AgentEntity.RetryAttempt> history) {
    public static final int TURNS_PER_ATTEMPT = 5;

    public RetryOutcome {
        history = List.copyOf(history);
    }

    static RetryOutcome run(UserProxyAgent executor, String code, Agent assistant) {
        int maxRetries = executor.definition().executorOptions().maxRetries();
        List<AgentEntity.RetryAttempt> history = new ArrayList<>();
        for (int attempt = 1; attempt <= maxRetries; attempt++) {
            ChatResult result = executor.initiateChat(assistant,
                    "Execute this code and debug if needed:\n\n```python\n" + code + "\n```", TURNS_PER_ATTEMPT);
            boolean success = !result.executions().isEmpty()
                    && result.executions().get(result.executions().size() - 1).verdict() == Verdict.OK;
            AgentEntity.RetryAttempt record = new AgentEntity.RetryAttempt(attempt, success, result.conversationId(),
                    result.summary(), Instant.now());
            history.add(record);
            executor.runtime().recordRetryAttempt(executor.name(), record);
            if (success) {
                return new RetryOutcome(true, result, history);
            }
        }
        ChatResult debug = executor.initiateChat(assistant, "Debug this code that failed after " + maxRetries
                + " attempts:\n\n```python\n" + code + "\n```\n\nExecution history: " + history);
        return new RetryOutcome(false, debug, history);
    }
}
