package io.agentexec.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.agents.entity.ConversationEntity;
import io.agentexec.agents.entity.ExecutionPipeline;
import io.agentexec.agents.entity.ExecutionStatistics;
import io.agentexec.sandbox.model.Verdict;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.io.TempDir;
import io.agentexec.testkit.FakeModel;

/** AG2's chat rules and the seed's executor subclasses, on a real node with real sandboxes and HTTP. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AgentBehaviourTest {
    private AgentRuntime runtime;

    @BeforeAll
    void start() {
        runtime = AgentRuntime.start(TestRuntimes.h2());
    }

    @AfterAll
    void stop() {
        runtime.close();
    }

    private UserProxyAgent proxy(String name, java.util.function.UnaryOperator<UserProxyAgent.Options> more) {
        return runtime.userProxyAgent(name, o -> more.apply(o.humanInputMode(HumanInputMode.NEVER)
                .codeExecutionConfig(Map.of("use_docker", true, "timeout", 30))));
    }

    @Test
    void maxConsecutiveAutoReplyEndsTheChat() throws Exception {
        try (FakeModel llm = new FakeModel()) {
            llm.reply("thinking").reply("still thinking").reply("more thinking").reply("never used");
            AssistantAgent assistant = runtime.assistantAgent("chatty", "Talk.", TestRuntimes.llm(llm));
            UserProxyAgent user = proxy("limited", o -> o.maxConsecutiveAutoReply(2));
            ChatResult result = user.initiateChat(assistant, "hello");
            assertEquals(6, result.chatHistory().size());
            assertEquals(ChatMessage.Source.DEFAULT_AUTO_REPLY, result.chatHistory().get(2).source());
            assertEquals("", result.chatHistory().get(2).content());
            assertTrue(result.terminationReason().contains("max_consecutive_auto_reply (2) reached by limited"),
                    result.terminationReason());
            assertEquals("more thinking", result.summary());
        }
    }

    @Test
    void maxTurnsBoundsTheInitiatorsMessages() throws Exception {
        try (FakeModel llm = new FakeModel()) {
            llm.reply("one").reply("two").reply("three");
            AssistantAgent assistant = runtime.assistantAgent("turns_assistant", "Talk.", TestRuntimes.llm(llm));
            UserProxyAgent user = proxy("turns_user", o -> o);
            ChatResult result = user.initiateChat(assistant, "hello", 2);
            assertEquals(4, result.chatHistory().size());
            assertTrue(result.terminationReason().contains("max_turns (2)"));
            assertEquals(2, llm.requests().size());
        }
    }

    @Test
    void terminateModeWaitsForAHumanThenTimesOutWithAg2sNotice() throws Exception {
        try (FakeModel llm = new FakeModel()) {
            llm.reply("Done.\nTERMINATE");
            AssistantAgent assistant = runtime.assistantAgent("brief_assistant", "Talk.", TestRuntimes.llm(llm));
            UserProxyAgent user = proxy("waiting_user", o -> o.humanInputMode(HumanInputMode.TERMINATE)
                    .humanInputTimeout(Duration.ofMillis(300)));
            ChatResult result = user.initiateChat(assistant, "hello");
            assertEquals(ConversationStatus.TERMINATED, result.status());
            ConversationEntity.Transcript t = runtime.transcript(result.conversationId());
            assertEquals(1, t.notices().size());
            assertEquals(ConversationEntity.NO_HUMAN_INPUT, t.notices().get(0).text());
            assertTrue(result.terminationReason().contains("no human reply"), result.terminationReason());
        }
    }

    @Test
    void alwaysModeTakesHumanInputThroughTheApi() throws Exception {
        try (FakeModel llm = new FakeModel()) {
            llm.reply("```python\nprint(6 * 7)\n```").reply("The answer is 42.\nTERMINATE");
            AssistantAgent assistant = runtime.assistantAgent("always_assistant", "Talk.", TestRuntimes.llm(llm));
            UserProxyAgent user = runtime.userProxyAgent("always_user", o -> o
                    .codeExecutionConfig(Map.of("use_docker", true)));
            assertEquals(HumanInputMode.ALWAYS, user.definition().humanInputMode());
            String id = runtime.startChat(user, assistant, "compute 6*7", OptionalInt.empty());

            ConversationEntity.Transcript waiting = awaitHuman(id);
            assertTrue(waiting.pendingHuman().orElseThrow().prompt().startsWith("Replying as always_user."));
            runtime.provideHumanInput(id, "");           // enter: use the auto reply, i.e. run the code
            awaitHuman(id);
            runtime.provideHumanInput(id, "exit");
            ChatResult result = runtime.awaitResult(id, Duration.ofMinutes(2));

            assertEquals("exitcode: 0 (execution succeeded)\nCode output: 42\n", result.chatHistory().get(2).content());
            assertTrue(result.terminationReason().contains("exit"));
            assertThrows(AgentConfigException.class, () -> runtime.provideHumanInput(id, "late"));
        }
    }

    @Test
    void humanTextIsSentAsTheReply() throws Exception {
        try (FakeModel llm = new FakeModel()) {
            llm.reply("Shall I continue?").reply("OK.\nTERMINATE");
            AssistantAgent assistant = runtime.assistantAgent("asking_assistant", "Talk.", TestRuntimes.llm(llm));
            UserProxyAgent user = runtime.userProxyAgent("typing_user", o -> o.humanInputMode("TERMINATE")
                    .maxConsecutiveAutoReply(0));
            String id = runtime.startChat(user, assistant, "start", OptionalInt.empty());
            awaitHuman(id);
            runtime.provideHumanInput(id, "yes, continue");
            awaitHuman(id);
            runtime.provideHumanInput(id, "");
            ChatResult result = runtime.awaitResult(id, Duration.ofMinutes(1));
            assertEquals(ChatMessage.Source.HUMAN, result.chatHistory().get(2).source());
            assertEquals("yes, continue", result.chatHistory().get(2).content());
            assertEquals(ConversationStatus.TERMINATED, result.status());
        }
    }

    private ConversationEntity.Transcript awaitHuman(String id) throws InterruptedException {
        for (int i = 0; i < 600; i++) {
            ConversationEntity.Transcript t = runtime.transcript(id);
            if (t.status() == ConversationStatus.AWAITING_HUMAN) {
                return t;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("conversation " + id + " never waited for a human");
    }

    @Test
    void modelCallsAreRetriedOn429And5xx() throws Exception {
        try (FakeModel llm = new FakeModel()) {
            llm.status(429).status(503).reply("TERMINATE");
            AssistantAgent assistant = runtime.assistantAgent("retried_assistant", "Talk.", TestRuntimes.llm(llm));
            ChatResult result = proxy("retry_user", o -> o).initiateChat(assistant, "hello");
            assertEquals(ConversationStatus.TERMINATED, result.status());
            assertEquals(3, llm.requests().size());
            assertEquals("TERMINATE", result.summary());
        }
    }

    @Test
    void aRefusedModelCallFailsTheChatWithoutRetrying() throws Exception {
        try (FakeModel llm = new FakeModel()) {
            llm.status(401).reply("never");
            AssistantAgent assistant = runtime.assistantAgent("refused_assistant", "Talk.", TestRuntimes.llm(llm));
            ChatResult result = proxy("refused_user", o -> o).initiateChat(assistant, "hello");
            assertEquals(ConversationStatus.FAILED, result.status());
            assertEquals(1, llm.requests().size());
            assertTrue(result.terminationReason().contains("refused_assistant"), result.terminationReason());
        }
    }

    @Test
    void replayModelIsLabelledInTheTranscript(@TempDir Path dir) throws Exception {
        Path script = dir.resolve("median.replay");
        Files.writeString(script, "```sh\necho replayed\n```\n---\nTERMINATE\n");
        AssistantAgent assistant = runtime.assistantAgent("replay_assistant", LlmConfig.replay(script.toString()));
        ChatResult result = proxy("replay_user", o -> o).initiateChat(assistant, "go");
        assertEquals("replay:" + script, result.chatHistory().get(1).model().orElseThrow());
        assertEquals("exitcode: 0 (execution succeeded)\nCode output: replayed\n", result.chatHistory().get(2).content());
        assertTrue(assistant.definition().systemMessage().contains("TERMINATE"));
        assertTrue(assistant.definition().systemMessage().contains("# filename:"));
    }

    @Test
    void useDockerFalseRunsInTheClustersSandboxStillSandboxed() throws Exception {
        UserProxyAgent user = runtime.userProxyAgent("bwrap_user", o -> o.humanInputMode(HumanInputMode.NEVER)
                .codeExecutionConfig(Map.of("use_docker", false, "timeout", 20)));
        ExecutionPipeline.Outcome outcome = user.executeCode("sh", "id -u; ls /root 2>&1 | head -1");
        assertEquals("docker", outcome.record().backend(), "a worker's sandbox, never this node's host");
        assertTrue(outcome.record().output().startsWith("65534\n"), outcome.record().output());
    }

    @Test
    void forbiddenPatternsRefuseCodeBeforeItRuns() throws Exception {
        try (FakeModel llm = new FakeModel()) {
            llm.reply("```python\nimport os\nprint(os.listdir('/'))\n```").reply("I will not do that.\nTERMINATE");
            AssistantAgent assistant = runtime.assistantAgent("sneaky_assistant", "Talk.", TestRuntimes.llm(llm));
            UserProxyAgent secureExecutor = proxy("secure_executor",
                    o -> o.forbiddenPatterns(ExecutorOptions.seedSecurePatterns()));
            ChatResult result = secureExecutor.initiateChat(assistant, "list the root directory");
            assertEquals("exitcode: 1 (execution failed)\nCode output: Potentially unsafe code detected: import os",
                    result.chatHistory().get(2).content());
            assertEquals(Verdict.POLICY_VIOLATION, result.executions().get(0).verdict());
        }
    }

    @Test
    void cachedResultsAreMarkedAndCounted() {
        UserProxyAgent cachingExecutor = proxy("caching_executor", o -> o.cacheResults(true));
        ExecutionPipeline.Outcome first = cachingExecutor.executeCode("python", "print(sum(range(10)))");
        ExecutionPipeline.Outcome second = cachingExecutor.executeCode("python", "print(sum(range(10)))");
        ExecutionPipeline.Outcome other = cachingExecutor.executeCode("python", "print(sum(range(11)))");
        assertEquals("exitcode: 0 (execution succeeded)\nCode output: 45\n", first.content());
        assertEquals("[CACHED RESULT]\nexitcode: 0 (execution succeeded)\nCode output: 45\n", second.content());
        assertTrue(second.record().cached());
        assertEquals("exitcode: 0 (execution succeeded)\nCode output: 55\n", other.content());
        ExecutionStatistics stats = cachingExecutor.executionStatistics();
        assertEquals(3, stats.overall().count());
        assertEquals(1, stats.overall().cached());
    }

    @Test
    void sandboxErrorsAreNeverCached() {
        UserProxyAgent executor = runtime.userProxyAgent("missing_image_executor", o -> o
                .humanInputMode(HumanInputMode.NEVER).cacheResults(true)
                .codeExecutionConfig(Map.of("use_docker", "agentexec/does-not-exist:1")));
        ExecutionPipeline.Outcome first = executor.executeCode("python", "print(1)");
        ExecutionPipeline.Outcome second = executor.executeCode("python", "print(1)");
        assertEquals(Verdict.SANDBOX_ERROR, first.record().verdict());
        assertEquals(Verdict.SANDBOX_ERROR, second.record().verdict());
        assertTrue(!second.record().cached() && !second.content().startsWith("[CACHED RESULT]"));
    }

    @Test
    void testingExecutorReportsEachCase() {
        UserProxyAgent testExecutor = proxy("test_executor", o -> o);
        String fibonacci = """
                def fibonacci(n):
                    if n <= 1:
                        return n
                    return fibonacci(n-1) + fibonacci(n-2)
                """;
        TestReport report = testExecutor.runTests(fibonacci, List.of(
                "test_results.append(fibonacci(0) == 0)",
                "test_results.append(fibonacci(1) == 1)",
                "test_results.append(fibonacci(5) == 5)",
                "test_results.append(fibonacci(10) == 55)",
                "test_results.append(fibonacci(10) == 56)"));
        assertEquals(List.of(TestReport.Status.PASS, TestReport.Status.PASS, TestReport.Status.PASS,
                TestReport.Status.PASS, TestReport.Status.FAIL), report.tests().stream().map(TestReport.TestOutcome::status).toList());
        assertThrows(AgentConfigException.class, () -> testExecutor.runTests(fibonacci, List.of()));
    }

    @Test
    void statisticsAreKeptByResourceProfile() {
        UserProxyAgent optimized = proxy("optimized_executor", o -> o.resourceProfile("simple"));
        optimized.executeCode("python", "print('a')");
        optimized.executeCode("python", "raise SystemExit(3)", "complex");
        ExecutionStatistics stats = optimized.executionStatistics();
        assertEquals(2, stats.overall().count());
        assertEquals(0.5, stats.overall().successRate());
        assertEquals(1, stats.byProfile().get("simple").successes());
        assertEquals(0, stats.byProfile().get("complex").successes());
        assertTrue(stats.byProfile().get("simple").p95Millis() >= stats.byProfile().get("simple").p50Millis());
        AgentConfigException e = assertThrows(AgentConfigException.class,
                () -> proxy("bad_profile", o -> o.resourceProfile("huge")));
        assertTrue(e.getMessage().contains("resource_profile"));
        assertThrows(AgentConfigException.class, () -> optimized.executeCode("python", "print(1)", "huge"));
    }

    @Test
    void unknownLanguageGetsAg2sAnswer() {
        ExecutionPipeline.Outcome outcome = proxy("cobol_user", o -> o).executeCode("cobol", "DISPLAY 'HI'.");
        assertEquals("exitcode: 1 (execution failed)\nCode output: unknown language cobol", outcome.content());
    }

    @Test
    void badAgentsAndChatsAreRefused() throws Exception {
        assertThrows(AgentConfigException.class, () -> proxy("bad name", o -> o));
        assertThrows(AgentConfigException.class, () -> proxy("negative", o -> o.maxConsecutiveAutoReply(-1)));
        assertThrows(AgentConfigException.class, () -> proxy("retries", o -> o.maxRetries(0)));
        UserProxyAgent user = proxy("lonely", o -> o);
        AgentConfigException self = assertThrows(AgentConfigException.class,
                () -> runtime.startChat(user, user, "hi", OptionalInt.empty()));
        assertTrue(self.getMessage().contains("itself"));
        try (FakeModel llm = new FakeModel()) {
            AssistantAgent assistant = runtime.assistantAgent("zero_turns", "Talk.", TestRuntimes.llm(llm));
            AgentConfigException turns = assertThrows(AgentConfigException.class,
                    () -> runtime.startChat(user, assistant, "hi", OptionalInt.of(0)));
            assertTrue(turns.getMessage().contains("max_turns"));
        }
    }
}
