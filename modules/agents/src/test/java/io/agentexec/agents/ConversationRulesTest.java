package io.agentexec.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.agents.execution.CodeFinder;
import io.agentexec.agents.llm.LlmException;
import io.agentexec.agents.llm.LlmRequest;
import io.agentexec.agents.llm.ReplayModel;
import io.agentexec.sandbox.model.CodeBlock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The plain rules a chat follows: termination, which messages are scanned for code, the replay script. */
class ConversationRulesTest {

    @Test
    void defaultTerminationIsTerminateOrEndingWithIt() {
        TerminationCheck check = TerminationCheck.defaultCheck();
        assertTrue(check.isTermination("TERMINATE"));
        assertTrue(check.isTermination("All done.\nTERMINATE  \n"));
        assertFalse(check.isTermination("TERMINATE is what I will say later"));
        assertFalse(check.isTermination(""));
        assertTrue(new TerminationCheck("BYE", TerminationCheck.Match.EXACT).isTermination(" BYE "));
        assertFalse(new TerminationCheck("BYE", TerminationCheck.Match.EXACT).isTermination("ok BYE"));
        assertThrows(AgentConfigException.class, () -> new TerminationCheck(" ", TerminationCheck.Match.EXACT));
    }

    private static ChatMessage msg(int i, String sender, String content) {
        return new ChatMessage(i, sender, sender.equals("a") ? "b" : "a", content, ChatMessage.Source.LLM,
                Instant.EPOCH, TokenCount.NONE, Optional.empty());
    }

    @Test
    void autoScansOnlyTheMessagesSinceTheAgentLastSpoke() {
        List<ChatMessage> history = List.of(
                msg(0, "b", "```python\nprint('old')\n```"),
                msg(1, "a", "exitcode: 0"),
                msg(2, "b", "no code here"),
                msg(3, "b", "still none"));
        assertEquals(List.of(), CodeFinder.find(history, "a", LastNMessages.auto()));
        assertEquals(List.of(new CodeBlock("python", "print('old')")), CodeFinder.find(history, "a", LastNMessages.of(4)));
        assertEquals(List.of(), CodeFinder.find(history, "a", LastNMessages.of(3)));
        assertEquals(List.of(), CodeFinder.find(history, "a", LastNMessages.of(0)));
    }

    @Test
    void newestMessageWithCodeWins() {
        List<ChatMessage> history = List.of(
                msg(0, "b", "```python\nprint(1)\n```"),
                msg(1, "b", "```sh\necho 2\n```"));
        assertEquals(List.of(new CodeBlock("sh", "echo 2")), CodeFinder.find(history, "a", LastNMessages.auto()));
    }

    @Test
    void lastNMessagesMustNotBeNegative() {
        AgentConfigException e = assertThrows(AgentConfigException.class, () -> LastNMessages.of(-2));
        assertTrue(e.getMessage().contains("last_n_messages"));
    }

    @Test
    void replayScriptAnswersByReplyIndexAndSaysWhenItRunsOut(@TempDir Path dir) throws Exception {
        Path script = dir.resolve("script.txt");
        Files.writeString(script, "first reply\n---\n```python\nprint(2)\n```\n---\nTERMINATE\n");
        LlmConfig config = LlmConfig.replay(script.toString());
        ReplayModel model = new ReplayModel(config);
        assertEquals(3, model.replies().size());
        assertEquals("```python\nprint(2)\n```", model.complete(new LlmRequest("c", "x", "", List.of(), 1)).content());
        assertEquals("replay:" + script, model.complete(new LlmRequest("c", "x", "", List.of(), 0)).model());
        LlmException e = assertThrows(LlmException.class, () -> model.complete(new LlmRequest("c", "x", "", List.of(), 3)));
        assertTrue(e.getMessage().contains("has 3 replies"));
    }

    @Test
    void llmConfigErrorsNameTheirKey() {
        assertThrows(AgentConfigException.class, () -> LlmConfig.openAi("ftp://x", "m", "", 0, Duration.ofSeconds(1)));
        AgentConfigException t = assertThrows(AgentConfigException.class,
                () -> LlmConfig.openAi("http://127.0.0.1:1/v1", "m", "", 3, Duration.ofSeconds(1)));
        assertTrue(t.getMessage().contains("temperature"));
        AgentConfigException d = assertThrows(AgentConfigException.class,
                () -> LlmConfig.openAi("http://127.0.0.1:1/v1", "m", "", 0, Duration.ZERO));
        assertTrue(d.getMessage().contains("timeout"));
        assertThrows(AgentConfigException.class, () -> HumanInputMode.parse("SOMETIMES"));
        assertEquals(HumanInputMode.TERMINATE, HumanInputMode.parse("terminate"));
    }

    @Test
    void testReportParsesPassAndFailAndCountsMissingLinesAsFail() {
        // the seed's harness is the shared one (io.agentexec.cluster.executors), as the gateway's requests use it
        List<io.agentexec.cluster.executors.TestReport.Status> outcomes =
                io.agentexec.cluster.executors.TestReport.parseAssertions("Test 1: PASS\nTest 2: FAIL\n", 3);
        assertEquals(List.of(io.agentexec.cluster.executors.TestReport.Status.PASS,
                io.agentexec.cluster.executors.TestReport.Status.FAIL,
                io.agentexec.cluster.executors.TestReport.Status.FAIL), outcomes);
    }
}
