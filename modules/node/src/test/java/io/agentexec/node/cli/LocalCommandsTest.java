package io.agentexec.node.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The local commands (exec, languages), run in-process against the real engine (bubblewrap and Docker). */
class LocalCommandsTest {
    private record Outcome(int exit, String stdout, String stderr) {
        JsonNode json() throws IOException {
            return new ObjectMapper().readTree(stdout);
        }
    }

    private static Outcome run(String stdin, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit = Cli.run(List.of(args), Map.of(), new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)),
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Outcome(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void execPrintsTheResultAsOneJsonObjectWithEveryField() throws IOException {
        Outcome o = run("print('hi')", "exec", "--language", "python", "--backend", "bwrap", "-");
        assertEquals(0, o.exit(), o::stderr);
        JsonNode r = o.json();
        assertEquals("OK", r.get("verdict").asText());
        assertEquals(0, r.get("exitCode").asInt());
        assertEquals("hi\n", r.get("stdout").asText());
        for (String field : List.of("stderr", "output", "stdoutTruncated", "stderrTruncated", "wallTimeMs", "peakMemoryBytes",
                "filesWritten", "signal", "ag2Reply", "backend")) {
            assertTrue(r.has(field), field);
        }
        assertEquals("exitcode: 0 (execution succeeded)\nCode output: hi\n", r.get("ag2Reply").asText());
    }

    @Test
    void theSeedsExecutorsRunHereToo() throws IOException {
        Outcome refused = run("import os\nprint(1)", "exec", "--language", "python", "--backend", "bwrap",
                "--policy", "secure", "-");
        assertEquals(0, refused.exit(), refused::stderr);
        assertEquals("POLICY_VIOLATION", refused.json().get("verdict").asText(), refused.stdout());
        assertEquals("Potentially unsafe code detected: import os", refused.json().get("message").asText());

        Outcome retried = run("exit 7", "exec", "--language", "bash", "--backend", "bwrap", "--retries", "2", "-");
        assertEquals("RUNTIME_ERROR", retried.json().get("verdict").asText(), retried.stdout());
        assertEquals(2, retried.json().get("attempts").size(), retried.stdout());

        Outcome tested = run("print(int(input()) * 3)", "exec", "--language", "python", "--backend", "bwrap",
                "--test", "1=3", "--test", "2=5", "-");
        JsonNode cases = tested.json().get("tests").get("cases");
        assertEquals("PASS", cases.get(0).get("status").asText(), tested.stdout());
        assertEquals("FAIL", cases.get(1).get("status").asText());

        Outcome profiled = run("print(1)", "exec", "--language", "python", "--backend", "bwrap", "--profile", "complex", "-");
        assertEquals("complex", profiled.json().get("profile").asText(), profiled.stdout());
        assertTrue(profiled.json().get("notes").toString().contains("held at the ceiling"), profiled.stdout());

        Outcome unknown = run("1", "exec", "--language", "python", "--policy", "paranoid", "-");
        assertEquals(2, unknown.exit(), unknown.stderr());
        assertTrue(unknown.stderr().contains("unknown policy 'paranoid'"), unknown.stderr());
    }

    @Test
    void aFailingProgramStillExitsZeroBecauseTheEngineRanIt(@TempDir Path dir) throws IOException {
        Path file = dir.resolve("fail.sh");
        Files.writeString(file, "echo oops >&2; exit 3");
        Outcome o = run("", "exec", "--language", "bash", "--timeout", "5", "--memory", "128m", "--backend", "docker", file.toString());
        assertEquals(0, o.exit(), o::stderr);
        assertEquals("RUNTIME_ERROR", o.json().get("verdict").asText());
        assertEquals(3, o.json().get("exitCode").asInt());
        assertEquals("oops\n", o.json().get("stderr").asText());
    }

    @Test
    void invalidUtf8OutputIsStillValidJson() throws IOException {
        Outcome o = run("import sys\nsys.stdout.buffer.write(b'\\xc3\\x28 bad\\n')", "exec", "-l", "python", "--backend", "bwrap", "-");
        assertEquals(0, o.exit(), o::stderr);
        assertEquals("\uFFFD( bad\n", o.json().get("stdout").asText());
    }

    @Test
    void stdinFileAndOutputCapAreApplied(@TempDir Path dir) throws IOException {
        Path input = dir.resolve("in.txt");
        Files.writeString(input, "abcdef");
        Outcome o = run("import sys\nprint(sys.stdin.read() * 100)", "exec", "-l", "python", "--backend", "bwrap",
                "--output-bytes", "16", "--stdin", input.toString(), "-");
        assertEquals("OUTPUT_LIMIT", o.json().get("verdict").asText());
        assertEquals("abcdefabcdefabcd", o.json().get("stdout").asText());
        assertTrue(o.json().get("stdoutTruncated").asBoolean());
    }

    @Test
    void usageErrorsExitNonZeroWithOneLineOnStderr() {
        List<String[]> bad = List.of(
                new String[] {"exec", "-"},
                new String[] {"exec", "--language", "python"},
                new String[] {"exec", "--language", "python", "--timeout", "soon", "-"},
                new String[] {"exec", "--language", "python", "--timeout", "-1", "-"},
                new String[] {"exec", "--language", "python", "--memory", "lots", "-"},
                new String[] {"exec", "--language", "python", "--cpus", "NaN", "-"},
                new String[] {"exec", "--language", "python", "--backend", "podman", "-"},
                new String[] {"exec", "--language", "python", "--frobnicate", "-"},
                new String[] {"exec", "--language", "python", "--docker-run-arg", "--privileged", "--backend", "bwrap", "-"},
                new String[] {"exec", "--language", "python", "/nonexistent/file.py"},
                new String[] {"exec", "--language", "python", "a.py", "b.py"},
                new String[] {"frobnicate"});
        for (String[] args : bad) {
            Outcome o = run("print(1)", args);
            assertEquals(2, o.exit(), String.join(" ", args));
            assertEquals("", o.stdout(), String.join(" ", args));
            assertEquals(1, o.stderr().strip().lines().count(), o.stderr());
            assertTrue(o.stderr().startsWith("agentexec: "), o.stderr());
            assertFalse(o.stderr().contains("Exception"), o.stderr());
        }
        assertEquals(2, run("").exit(), "no command at all prints the help to stderr");
        assertTrue(run("", "exec", "--language", "python", "--docker-run-arg", "--privileged", "--backend", "bwrap", "-")
                .stderr().contains("--privileged weakens isolation"));
    }

    @Test
    void languagesAreListed() {
        Outcome o = run("", "languages");
        assertEquals(0, o.exit());
        assertTrue(o.stdout().contains("\"python\""));
        assertTrue(o.stdout().contains("\"javascript\""));
    }
}
