package io.agentexec.agents.llm;

import io.agentexec.agents.LlmConfig;
import io.agentexec.agents.TokenCount;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A model that answers from a script, for tests and offline demos. The script is a text file of
 * replies separated by lines that hold only {@code ---}; an agent's n-th reply in a chat is the
 * n-th entry, so a chat resumed after a crash gets the same answers again. Transcripts name it
 * {@code replay:FILE}, never as a real model.
 */
public final class ReplayModel implements LlmClient {
    public static final String SEPARATOR = "---";

    private final LlmConfig config;
    private final List<String> replies;

    public ReplayModel(LlmConfig config) {
        this.config = config;
        this.replies = parse(read(Path.of(config.replayScript().orElseThrow())));
    }

    static List<String> parse(String script) {
        List<String> replies = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        for (String line : script.split("\n", -1)) {
            if (line.strip().equals(SEPARATOR)) {
                replies.add(current.toString().strip());
                current.setLength(0);
            } else {
                current.append(line).append('\n');
            }
        }
        if (!current.toString().isBlank()) {
            replies.add(current.toString().strip());
        }
        return List.copyOf(replies);
    }

    public List<String> replies() {
        return replies;
    }

    @Override
    public LlmReply complete(LlmRequest request) {
        if (request.replyIndex() >= replies.size()) {
            throw new LlmException("replay script " + config.replayScript().orElseThrow() + " has " + replies.size()
                    + " replies; " + request.agent() + " asked for reply " + (request.replyIndex() + 1));
        }
        return new LlmReply(replies.get(request.replyIndex()), TokenCount.NONE, config.label(), 1);
    }

    private static String read(Path path) {
        try {
            return Files.readString(path, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new LlmException("cannot read replay script " + path + ": " + e.getMessage(), e);
        }
    }
}
