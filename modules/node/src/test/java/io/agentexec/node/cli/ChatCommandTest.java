package io.agentexec.node.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The chat command, offline: the bundled replay model and a real sandbox. */
class ChatCommandTest {
    private static final String URL = "agentexec.cluster.persistence.url";

    @BeforeEach
    void privateDatabase() {
        System.setProperty(URL, "jdbc:h2:mem:chat-" + UUID.randomUUID() + ";DB_CLOSE_DELAY=-1;DATABASE_TO_UPPER=false");
        System.setProperty("agentexec.sandbox.docker.warm-pool.size", "0");
        ConfigFactory.invalidateCaches();
    }

    @AfterEach
    void clear() {
        System.clearProperty(URL);
        System.clearProperty("agentexec.sandbox.docker.warm-pool.size");
        ConfigFactory.invalidateCaches();
    }

    @Test
    void printsTheSeedsFirstChatTurnByTurnWithTheReplayModel() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = ChatCommand.run(new String[0], Map.of(), new ByteArrayInputStream(new byte[0]),
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        String text = out.toString(StandardCharsets.UTF_8);
        assertEquals(0, code, text + err);
        assertTrue(text.contains("[replay model: answers come from"), text);
        assertTrue(text.contains("code_executor (to coding_assistant) "), text);
        assertTrue(text.contains("coding_assistant (to code_executor) [replay:"), text);
        assertTrue(text.contains("exitcode: 0 (execution succeeded)\nCode output: odd: 2\neven: 2.5\nempty: median of an empty list"), text);
        assertTrue(text.contains("chat terminated: termination message from coding_assistant"), text);
    }

    @Test
    void unknownOptionsAreRefused() {
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int code = ChatCommand.run(new String[] {"--mesage", "hi"}, Map.of(), new ByteArrayInputStream(new byte[0]),
                new PrintStream(new ByteArrayOutputStream()), new PrintStream(err, true, StandardCharsets.UTF_8));
        assertEquals(2, code);
        assertTrue(err.toString(StandardCharsets.UTF_8).contains("unknown option --mesage"));
    }
}
