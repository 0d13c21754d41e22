package io.agentexec.agents.llm;

import dev.langchain4j.data.message.AiMessage;
import dev.langchain4j.data.message.SystemMessage;
import dev.langchain4j.data.message.UserMessage;
import dev.langchain4j.exception.HttpException;
import dev.langchain4j.exception.InternalServerException;
import dev.langchain4j.exception.RateLimitException;
import dev.langchain4j.exception.TimeoutException;
import dev.langchain4j.model.chat.request.ChatRequest;
import dev.langchain4j.model.chat.response.ChatResponse;
import dev.langchain4j.model.openai.OpenAiChatModel;
import dev.langchain4j.model.output.TokenUsage;
import io.agentexec.agents.LlmConfig;
import io.agentexec.agents.TokenCount;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, LM Studio) through langchain4j's
 * OpenAI client. langchain4j's own retries are off: ours know 429 and 5xx apart from errors that
 * retrying cannot fix, and count attempts for the transcript.
 */
public final class OpenAiCompatibleClient implements LlmClient {
    private static final Logger log = LoggerFactory.getLogger(OpenAiCompatibleClient.class);
    /** Endpoints such as Ollama and vLLM take any key but langchain4j requires one. */
    private static final String NO_KEY = "no-key";

    private final LlmConfig config;
    private final OpenAiChatModel model;
    private final RetryPolicy retry;

    public OpenAiCompatibleClient(LlmConfig config, RetryPolicy retry) {
        this.config = config;
        this.retry = retry;
        String key = config.apiKeyEnv().map(name -> Optional.ofNullable(System.getenv(name))
                        .filter(v -> !v.isBlank())
                        .orElseThrow(() -> new LlmException("llm_config.api_key_env: environment variable " + name + " is not set")))
                .orElse(NO_KEY);
        this.model = OpenAiChatModel.builder()
                .baseUrl(config.baseUrl())
                .apiKey(key)
                .modelName(config.model())
                .temperature(config.temperature())
                .timeout(config.requestTimeout())
                .maxRetries(0)
                .build();
    }

    @Override
    public LlmReply complete(LlmRequest request) {
        ChatRequest chat = ChatRequest.builder().messages(toMessages(request)).build();
        for (int attempt = 1; ; attempt++) {
            try {
                ChatResponse response = model.chat(chat);
                String text = response.aiMessage().text() == null ? "" : response.aiMessage().text();
                return new LlmReply(text, tokens(response.tokenUsage()), config.label(), attempt);
            } catch (RuntimeException e) {
                if (!retriable(e) || attempt >= retry.maxAttempts()) {
                    throw new LlmException("model " + config.model() + " at " + config.baseUrl() + " failed after "
                            + attempt + " attempt(s): " + e.getMessage(), e);
                }
                var pause = retry.backoffAfter(attempt);
                log.warn("model call for {} in {} failed ({}); retry {} in {} ms", request.agent(),
                        request.conversationId(), e.getMessage(), attempt + 1, pause.toMillis());
                sleep(pause.toMillis());
            }
        }
    }

    /** 429, 5xx, timeouts and broken connections may pass; 400, 401, 404 will not. */
    static boolean retriable(Throwable e) {
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof RateLimitException || t instanceof InternalServerException || t instanceof TimeoutException) {
                return true;
            }
            if (t instanceof HttpException h) {
                return h.statusCode() == 429 || h.statusCode() >= 500;
            }
            if (t instanceof IOException || t instanceof UncheckedIOException
                    || t instanceof java.net.http.HttpTimeoutException) {
                return true;
            }
        }
        return false;
    }

    private static List<dev.langchain4j.data.message.ChatMessage> toMessages(LlmRequest request) {
        List<dev.langchain4j.data.message.ChatMessage> messages = new ArrayList<>();
        if (!request.systemMessage().isBlank()) {
            messages.add(SystemMessage.from(request.systemMessage()));
        }
        for (LlmRequest.Turn turn : request.messages()) {
            messages.add(turn.role() == LlmRequest.Role.ASSISTANT ? AiMessage.from(turn.content())
                    : UserMessage.from(turn.content()));
        }
        return messages;
    }

    private static TokenCount tokens(TokenUsage usage) {
        if (usage == null) {
            return TokenCount.NONE;
        }
        return new TokenCount(usage.inputTokenCount() == null ? 0 : usage.inputTokenCount(),
                usage.outputTokenCount() == null ? 0 : usage.outputTokenCount());
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LlmException("interrupted while waiting to retry a model call", e);
        }
    }
}
