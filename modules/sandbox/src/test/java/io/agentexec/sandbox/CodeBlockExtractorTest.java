package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.agentexec.sandbox.blocks.CodeBlockExtractor;
import io.agentexec.sandbox.model.CodeBlock;
import java.util.List;
import org.junit.jupiter.api.Test;

class CodeBlockExtractorTest {
    @Test
    void findsFencedBlocksInOrderWithTheirLanguageTags() {
        String message = """
                First install nothing, then run:
                ```python
                print('a')
                ```
                and then
                ```sh
                echo b
                ```
                """;
        assertEquals(List.of(new CodeBlock("python", "print('a')"), new CodeBlock("sh", "echo b")),
                CodeBlockExtractor.extract(message));
    }

    @Test
    void aBlockWithoutATagHasAnEmptyLanguage() {
        assertEquals(List.of(new CodeBlock("", "x = 1\nprint(x)")), CodeBlockExtractor.extract("```\nx = 1\nprint(x)\n```"));
    }

    @Test
    void windowsLineEndingsAndTrailingSpacesAreAccepted() {
        assertEquals(List.of(new CodeBlock("js", "console.log(1)")),
                CodeBlockExtractor.extract("```js  \r\nconsole.log(1)\r\n```"));
    }

    @Test
    void textWithoutFencesHasNoBlocks() {
        assertEquals(List.of(), CodeBlockExtractor.extract("TERMINATE"));
        assertEquals(List.of(), CodeBlockExtractor.extract("an unclosed ```python\nprint(1)\n"));
    }

    @Test
    void multiLineBlocksKeepTheirIndentation() {
        String code = "def f():\n    return 1\n\nprint(f())";
        assertEquals(List.of(new CodeBlock("python", code)), CodeBlockExtractor.extract("```python\n" + code + "\n```"));
    }
}
