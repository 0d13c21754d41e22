package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.sandbox.blocks.FilenameDirective;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class FilenameDirectiveTest {
    @Test
    void readsTheNameFromAHashOrSlashComment() {
        assertEquals(Optional.of("app.py"), FilenameDirective.find("# filename: app.py\nprint(1)"));
        assertEquals(Optional.of("src/main.js"), FilenameDirective.find("// filename: src/main.js\nconsole.log(1)"));
        assertEquals(Optional.of("a b.sh"), FilenameDirective.find("#filename:   a b.sh  \necho"));
    }

    @Test
    void onlyTheFirstLineCounts() {
        assertEquals(Optional.empty(), FilenameDirective.find("print(1)\n# filename: late.py"));
        assertEquals(Optional.empty(), FilenameDirective.find(""));
    }

    @Test
    void namesInsideTheWorkspaceAreAccepted() {
        assertEquals(Optional.empty(), FilenameDirective.check("app.py"));
        assertEquals(Optional.empty(), FilenameDirective.check("dir/sub/app.py"));
        assertEquals(Optional.empty(), FilenameDirective.check("..hidden"));
    }

    @Test
    void namesThatLeaveTheWorkspaceAreRefusedWithAReason() {
        assertTrue(FilenameDirective.check("../x.py").orElseThrow().contains(".."));
        assertTrue(FilenameDirective.check("a/../../x.py").orElseThrow().contains(".."));
        assertTrue(FilenameDirective.check("/etc/passwd").orElseThrow().contains("absolute"));
        assertTrue(FilenameDirective.check("bad\0name").orElseThrow().contains("NUL"));
        assertTrue(FilenameDirective.check("a//b").orElseThrow().contains("empty"));
        assertTrue(FilenameDirective.check("./a").orElseThrow().contains("'.'"));
        assertTrue(FilenameDirective.check("  ").orElseThrow().contains("empty"));
        assertTrue(FilenameDirective.check("..\\windows.py").orElseThrow().contains(".."));
    }
}
