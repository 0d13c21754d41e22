package io.agentexec.node.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.agentexec.gateway.TestNodes;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The client commands against a real node. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ClientCommandsTest {
    private AutoCloseable node;
    private String server;

    @BeforeAll
    void start() throws Exception {
        var started = TestNodes.engineNode();
        node = started.node();
        server = started.base();
    }

    @AfterAll
    void stop() throws Exception {
        node.close();
    }

    private record Run(int exit, String out, String err) { }

    private Run run(String stdin, String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit = ClientCommands.run(List.of(args), Map.of("AGENTEXEC_SERVER", server, "AGENTEXEC_API_KEY", TestNodes.aliceKey()),
                new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8)),
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Run(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }

    @Test
    void execStreamsOutputAndPrintsTheResult() throws Exception {
        Run r = run("import time\nprint('a', flush=True)\ntime.sleep(4.5)\nprint('b')\n", "exec", "--language", "python", "-");
        assertEquals(0, r.exit(), r.err());
        JsonNode result = new ObjectMapper().readTree(r.out());
        assertEquals("OK", result.get("verdict").asText());
        assertEquals("a\nb\n", result.get("stdout").asText());
        assertTrue(r.err().contains("a\n"), r.err());
        assertTrue(r.err().contains("still running"), "progress for long work: " + r.err());

        String id = result.get("id").asText();
        Run logs = run("", "logs", id);
        assertEquals(0, logs.exit(), logs.err());
        assertTrue(logs.err().contains("a\nb\n"), logs.err());
    }

    @Test
    void theSeedsExecutorsAndStatsOnANode() throws Exception {
        String executor = "cli-" + java.util.UUID.randomUUID().toString().substring(0, 8);
        Run tested = run("print(input().upper())", "exec", "--language", "python", "--executor", executor,
                "--test", "ab=AB", "--test", "x=y", "--retries", "1", "--policy", "secure", "-");
        assertEquals(0, tested.exit(), tested.err());
        JsonNode result = new ObjectMapper().readTree(tested.out());
        assertEquals("PASS", result.get("tests").get("cases").get(0).get("status").asText(), tested.out());
        assertEquals("FAIL", result.get("tests").get("cases").get(1).get("status").asText());

        Run cached = run("print(41 + 1)", "exec", "--language", "python", "--cache", "-");
        Run again = run("print(41 + 1)", "exec", "--language", "python", "--cache", "-");
        assertTrue(new ObjectMapper().readTree(again.out()).get("cached").asBoolean(), cached.out() + again.out());

        long deadline = System.nanoTime() + 30_000_000_000L;
        JsonNode stats;
        do {
            Run s = run("", "stats", "--executor", executor);
            assertEquals(0, s.exit(), s.err());
            stats = new ObjectMapper().readTree(s.out());
        } while (stats.get("overall").get("count").asInt() < 2 && System.nanoTime() < deadline);
        assertEquals(2, stats.get("overall").get("count").asInt(), stats.toString());

        Run bad = run("1", "exec", "--language", "python", "--retries", "x", "-");
        assertEquals(ClientCommands.EXIT_USAGE, bad.exit(), bad.err());
    }

    @Test
    void sandboxCommands() throws Exception {
        Run created = run("", "sandbox", "create", "--language", "bash");
        assertEquals(0, created.exit(), created.err());
        String id = new ObjectMapper().readTree(created.out()).get("id").asText();
        Path local = Files.createTempFile("cli", ".txt");
        Files.writeString(local, "echo from-file");
        assertEquals(0, run("", "sandbox", "put", id, "run.sh", local.toString()).exit());
        Run exec = run("bash run.sh\n", "exec", "--sandbox", id, "--language", "bash", "-");
        assertEquals(0, exec.exit(), exec.err());
        assertTrue(exec.out().contains("from-file"), exec.out());
        assertEquals("echo from-file", run("", "sandbox", "get", id, "run.sh").out());
        assertEquals(0, run("", "sandbox", "rm", id).exit());
        assertEquals(1, run("", "sandbox", "rm", id).exit(), "a removed sandbox is gone");
    }

    @Test
    void aSandboxCreatedWithExecutorFlagsAppliesThemToItsRuns() throws Exception {
        Run created = run("", "sandbox", "create", "--language", "python", "--policy", "secure", "--retries", "2");
        assertEquals(0, created.exit(), created.err());
        JsonNode sandbox = new ObjectMapper().readTree(created.out());
        assertEquals("secure", sandbox.get("defaults").get("policy").asText(), created.out());
        String id = sandbox.get("id").asText();
        try {
            Run refused = run("import os\n", "exec", "--sandbox", id, "--language", "python", "-");
            assertEquals(0, refused.exit(), refused.err());
            assertEquals("POLICY_VIOLATION", new ObjectMapper().readTree(refused.out()).get("verdict").asText(), refused.out());
        } finally {
            run("", "sandbox", "rm", id);
        }
        Run withTests = run("", "sandbox", "create", "--language", "python", "--test", "1=1");
        assertEquals(ClientCommands.EXIT_USAGE, withTests.exit(), withTests.err());
    }

    @Test
    void usageAndRefusals() {
        assertEquals(2, run("", "exec", "-").exit());
        assertEquals(2, run("", "frobnicate").exit());
        Run refused = run("x", "exec", "--language", "/bin/sh", "-");
        assertEquals(1, refused.exit());
        assertTrue(refused.err().contains("language"), refused.err());
        Run chat = run("", "chat", "show", "conv-1");
        assertEquals(1, chat.exit());
        assertTrue(chat.err().contains("501"), chat.err());
    }
}
