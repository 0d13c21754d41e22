package io.agentexec.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.sql.DriverManager;
import java.time.Duration;
import java.util.Map;
import java.util.OptionalInt;
import java.util.UUID;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import io.agentexec.testkit.FakeModel;

/**
 * A node stops while a chat waits for its model; a new node on the same PostgreSQL journal picks
 * the chat up by itself and finishes it, with every message exactly once and the code not run again.
 */
class ConversationCrashResumeTest {
    private final String schema = "agents_crash_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);

    @AfterEach
    void dropSchema() throws Exception {
        try (var c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:5432/agentexec", "agentexec", "agentexec");
             var s = c.createStatement()) {
            s.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
        }
    }

    @Test
    void aChatCutOffMidTurnContinuesOnTheNextNode() throws Exception {
        try (FakeModel llm = new FakeModel()) {
            CountDownLatch arrived = new CountDownLatch(1);
            CountDownLatch release = new CountDownLatch(1);
            llm.reply("```python\nprint('ran once')\n```")
                    .add(new FakeModel.Held(new FakeModel.Reply("lost with the node", 1, 1), arrived, release))
                    .reply("It printed as expected.\nTERMINATE");

            String id;
            AgentRuntime first = AgentRuntime.start(TestRuntimes.postgres(schema));
            try {
                AssistantAgent assistant = first.assistantAgent("resumed_assistant", "Talk.", TestRuntimes.llm(llm));
                UserProxyAgent executor = first.userProxyAgent("resumed_executor", o -> o
                        .humanInputMode(HumanInputMode.NEVER)
                        .codeExecutionConfig(Map.of("use_docker", true, "timeout", 30)));
                id = first.startChat(executor, assistant, "print something", OptionalInt.empty());
                assertTrue(arrived.await(2, TimeUnit.MINUTES), "the second model call never came");
            } finally {
                first.close();        // the node goes away while its model call is under way
                release.countDown();
            }

            try (AgentRuntime second = AgentRuntime.start(TestRuntimes.postgres(schema))) {
                // nobody addresses the chat: the new node finds it unfinished in the journal
                ChatResult result = second.awaitResult(id, Duration.ofMinutes(2));

                assertEquals(ConversationStatus.TERMINATED, result.status());
                assertEquals(4, result.chatHistory().size());
                for (int i = 0; i < result.chatHistory().size(); i++) {
                    assertEquals(i, result.chatHistory().get(i).index());
                }
                assertEquals("exitcode: 0 (execution succeeded)\nCode output: ran once\n",
                        result.chatHistory().get(2).content());
                assertEquals("It printed as expected.\nTERMINATE", result.chatHistory().get(3).content());
                assertEquals(1, result.executions().size());
                assertEquals(3, llm.requests().size());
                assertEquals(0, llm.remaining());
            }
        }
    }
}
