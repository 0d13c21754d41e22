package io.agentexec.node.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.agentexec.node.AgentexecMain;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code agentexec serve} in a JVM of its own (a gateway-only cluster node on an H2 file, no sandbox needed), its
 * output format forced by AGENTEXEC_LOG_FORMAT: human, a start-up summary on stdout (roles, backend, journal, URL,
 * where the key is) and no JSON; json, every line of its output one JSON object, the summary one of them. The first
 * key is written owner-only and printed nowhere (stdout is a file here, not a terminal). Before, serve wrote the same
 * wall of JSON in a terminal and printed the first key on stdout.
 */
class ServeOutputTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** A bound for a loaded machine, not a measure. */
    private static final Duration START = Duration.ofMinutes(3);

    @TempDir
    Path dir;

    @Test
    void humanFormatPrintsAStartUpSummaryAndNoJson() throws Exception {
        Output output = serve("human", out -> out.contains("  keys"));
        assertTrue(output.out().lines().anyMatch(l -> l.equals("agentexec node started")), output.out());
        for (String field : List.of("  node     serve-test", "  roles    gateway", "  backend  cluster", "  journal  h2 jdbc:h2:file:",
                "  api      http://127.0.0.1:", "  keys     in the journal's database")) {
            assertTrue(output.out().lines().anyMatch(l -> l.startsWith(field)), field + " missing in\n" + output.out());
        }
        assertTrue(output.out().contains("first key in " + dir.resolve("first-api-key")), output.out());
        assertTrue(output.err().lines().noneMatch(l -> l.startsWith("{")), "no JSON in human mode:\n" + output.err());
        assertKeyShownNowhere(output);
    }

    @Test
    void jsonFormatWritesOneJsonObjectPerLine() throws Exception {
        Output output = serve("json", out -> false);
        List<JsonNode> lines = new ArrayList<>();
        for (String line : (output.out() + output.err()).lines().filter(l -> !l.isBlank()).toList()) {
            JsonNode parsed;
            try {
                parsed = JSON.readTree(line);
            } catch (IOException e) {
                throw new AssertionError("not a JSON line: " + line, e);
            }
            assertTrue(parsed.isObject(), line);
            lines.add(parsed);
        }
        JsonNode summary = lines.stream().filter(l -> l.path("message").asText().equals("agentexec node started"))
                .findFirst().orElseThrow(() -> new AssertionError("no summary in\n" + output.err()));
        assertEquals("serve-test", summary.path("node").asText());
        assertEquals("gateway", summary.path("roles").asText());
        assertTrue(summary.path("journal").asText().startsWith("h2 jdbc:h2:file:"), summary.toString());
        assertTrue(summary.path("api").asText().startsWith("http://127.0.0.1:"), summary.toString());
        assertTrue(summary.path("keys").asText().contains(dir.resolve("first-api-key").toString()), summary.toString());
        assertKeyShownNowhere(output);
    }

    private void assertKeyShownNowhere(Output output) throws IOException {
        Path keyFile = dir.resolve("first-api-key");
        assertEquals("rw-------", java.nio.file.attribute.PosixFilePermissions.toString(Files.getPosixFilePermissions(keyFile)));
        String key = Files.readString(keyFile).trim();
        assertTrue(key.startsWith("aex_"), key);
        assertFalse(output.out().contains(key) || output.err().contains(key), "the first key is printed nowhere");
    }

    record Output(String out, String err) {
    }

    /** Starts serve, waits for its summary (in stdout, or in stderr's JSON), then stops it with SIGTERM. */
    private Output serve(String format, Predicate<String> humanDone) throws Exception {
        Path config = dir.resolve("node.conf");
        Files.writeString(config, """
                agentexec.cluster.node-name = serve-test
                agentexec.cluster.roles = "gateway"
                agentexec.cluster.persistence.url = "jdbc:h2:file:%s;DATABASE_TO_UPPER=false;WRITE_DELAY=0"
                agentexec.gateway.port = 0
                agentexec.gateway.metrics.port = 0
                agentexec.gateway.auth.keys-file = "%s"
                agentexec.gateway.auth.first-key-file = "%s"
                pekko.remote.artery.canonical.hostname = "127.0.0.1"
                pekko.remote.artery.canonical.port = 0
                """.formatted(dir.resolve("db"), dir.resolve("keys.json"), dir.resolve("first-api-key")));
        Path out = dir.resolve("stdout");
        Path err = dir.resolve("stderr");
        String java = System.getProperty("java.home") + File.separator + "bin" + File.separator + "java";
        ProcessBuilder builder = new ProcessBuilder(java, "-Xmx384m", "-cp", System.getProperty("java.class.path"),
                AgentexecMain.class.getName(), "serve", config.toString())
                .directory(dir.toFile()).redirectOutput(out.toFile()).redirectError(err.toFile());
        builder.environment().put("AGENTEXEC_LOG_FORMAT", format);
        Process node = builder.start();
        try {
            Instant deadline = Instant.now().plus(START);
            while (Instant.now().isBefore(deadline) && node.isAlive()
                    && !humanDone.test(Files.readString(out)) && !Files.readString(err).contains("agentexec node started")) {
                Thread.sleep(200);
            }
            assertTrue(node.isAlive(), "serve ended early:\n" + Files.readString(out) + Files.readString(err));
        } finally {
            node.destroy(); // SIGTERM: the node stops gracefully
            if (!node.waitFor(2, TimeUnit.MINUTES)) {
                node.destroyForcibly().waitFor();
            }
        }
        return new Output(Files.readString(out), Files.readString(err));
    }
}
