package io.agentexec.sandbox.blocks;

import io.agentexec.sandbox.model.CodeBlock;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Finds fenced code blocks in a markdown message the way AG2's {@code extract_code} does:
 * triple-backtick fences, an optional language tag on the opening line, blocks in order.
 */
public final class CodeBlockExtractor {
    // AG2's CODE_BLOCK_PATTERN: ```[ \t]*(\w+)?[ \t]*\r?\n(.*?)[ \t]*\r?\n```
    private static final Pattern FENCE = Pattern.compile("```[ \\t]*([\\w+\\-.#]+)?[ \\t]*\\r?\\n(.*?)[ \\t]*\\r?\\n```",
            Pattern.DOTALL);

    private CodeBlockExtractor() {
    }

    public static List<CodeBlock> extract(String message) {
        List<CodeBlock> blocks = new ArrayList<>();
        Matcher m = FENCE.matcher(message);
        while (m.find()) {
            String language = m.group(1) == null ? "" : m.group(1);
            blocks.add(new CodeBlock(language, m.group(2)));
        }
        return blocks;
    }
}
