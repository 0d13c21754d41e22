package io.agentexec.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.sandbox.model.Verdict;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import io.agentexec.testkit.FakeModel;

/**
 * The seed's chats end to end: real HTTP to a scripted OpenAI-compatible server on loopback through
 * langchain4j, real Docker sandboxes, a real journal (H2). The assistant's replies are scripted; the
 * executions and their AG2-format results are real.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SeedScenariosTest {
    private AgentRuntime runtime;

    @BeforeAll
    void start() {
        runtime = AgentRuntime.start(TestRuntimes.h2());
    }

    @AfterAll
    void stop() {
        runtime.close();
    }

    private static String python(String code) {
        return "```python\n" + code + "\n```";
    }

    @Test
    void medianOfAListWithEdgeCases() throws Exception {
        try (FakeModel llm = new FakeModel()) {
            llm.reply("Here is the function with tests:\n\n" + python("""
                    def median(values):
                        if not values:
                            raise ValueError("median of an empty list")
                        s = sorted(values)
                        mid = len(s) // 2
                        return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2

                    print("odd:", median([3, 1, 2]))
                    print("even:", median([4, 1, 3, 2]))
                    try:
                        median([])
                    except ValueError as e:
                        print("empty:", e)"""))
                    .reply("All three cases behave as expected.\nTERMINATE");
            AssistantAgent assistant = runtime.assistantAgent("coding_assistant", """
                    You are a Python programming expert.
                    Write clean, efficient code and explain your solutions.""", TestRuntimes.llm(llm));
            UserProxyAgent codeExecutor = runtime.userProxyAgent("code_executor", o -> o
                    .humanInputMode(HumanInputMode.NEVER)
                    .codeExecutionConfig(Map.of("work_dir", "python_workspace", "use_docker", true)));

            ChatResult result = codeExecutor.initiateChat(assistant, """
                    Write and test a Python function that:
                    1. Takes a list of numbers
                    2. Returns the median value
                    3. Handles edge cases (empty list, even/odd length)""");

            assertEquals(ConversationStatus.TERMINATED, result.status());
            assertEquals(4, result.chatHistory().size());
            String execution = result.chatHistory().get(2).content();
            assertEquals("exitcode: 0 (execution succeeded)\nCode output: odd: 2\neven: 2.5\nempty: median of an empty list\n",
                    execution);
            assertEquals(ChatMessage.Source.CODE_EXECUTION, result.chatHistory().get(2).source());
            assertEquals("All three cases behave as expected.\nTERMINATE", result.summary());
            assertTrue(result.terminationReason().contains("termination message"), result.terminationReason());
            // tokens as the endpoint reported them, per message and for the chat; the model is named
            assertEquals(new TokenCount(200, 40), result.tokenUsage());
            assertEquals(new TokenCount(100, 20), result.chatHistory().get(1).tokens());
            assertEquals("fake-model", result.chatHistory().get(1).model().orElseThrow());
            // the model saw the system message, the task as "user", then its own reply and the result
            var second = llm.requests().get(1).get("messages");
            assertEquals("system", second.get(0).get("role").asText());
            assertTrue(second.get(0).get("content").asText().startsWith("You are a Python programming expert."));
            assertEquals("user", second.get(1).get("role").asText());
            assertEquals("assistant", second.get(2).get("role").asText());
            assertEquals(execution, second.get(3).get("content").asText());
            assertEquals("Bearer sk-test-loopback", llm.authorizations().get(0));
            // timestamps are in order
            for (int i = 1; i < result.chatHistory().size(); i++) {
                assertFalse(result.chatHistory().get(i).timestamp().isBefore(result.chatHistory().get(i - 1).timestamp()));
                assertEquals(i, result.chatHistory().get(i).index());
            }
        }
    }

    @Test
    void dataAnalysisOnTheDataScienceImageSavesAChart() throws Exception {
        try (FakeModel llm = new FakeModel()) {
            llm.reply(python("""
                    # filename: analysis.py
                    import numpy as np
                    import pandas as pd
                    import matplotlib
                    matplotlib.use("Agg")
                    import matplotlib.pyplot as plt

                    rng = np.random.default_rng(42)
                    df = pd.DataFrame({"x": rng.normal(0, 1, 1000), "y": rng.normal(5, 2, 1000)})
                    print("rows:", len(df))
                    print(df.describe().round(3).to_string())
                    z = (df - df.mean()) / df.std()
                    print("outliers:", int((z.abs() > 3).any(axis=1).sum()))
                    df.plot.scatter(x="x", y="y", s=4)
                    plt.savefig("chart.png")
                    print("saved chart.png")"""))
                    .reply("The statistics and the chart are ready.\nTERMINATE");
            AssistantAgent dataAnalyst = runtime.assistantAgent("data_analyst", """
                    You are a data analysis expert.
                    Use pandas, numpy, and matplotlib for data analysis.""", TestRuntimes.llm(llm));
            UserProxyAgent analysisExecutor = runtime.userProxyAgent("analysis_executor", o -> o
                    .humanInputMode(HumanInputMode.NEVER)
                    .codeExecutionConfig(Map.of("work_dir", "data_workspace", "use_docker", "python:3.9-slim",
                            "timeout", 300)));

            ChatResult result = analysisExecutor.initiateChat(dataAnalyst, """
                    Create a sample dataset and perform analysis:
                    1. Generate 1000 random data points
                    2. Calculate basic statistics
                    3. Create visualizations
                    4. Identify patterns or outliers""");

            ExecutionRecord run = result.executions().get(0);
            assertEquals(Verdict.OK, run.verdict(), run.output());
            assertTrue(run.output().contains("rows: 1000"), run.output());
            assertTrue(run.output().contains("mean"), run.output());
            assertTrue(run.filesWritten().contains("chart.png"), () -> "files: " + run.filesWritten());
            assertTrue(result.chatHistory().get(2).content().startsWith("exitcode: 0 (execution succeeded)\nCode output: rows: 1000"));
        }
    }

    @Test
    void bashBackupScript() throws Exception {
        try (FakeModel llm = new FakeModel()) {
            llm.reply("```bash\n" + """
                    # filename: backup.sh
                    set -euo pipefail
                    mkdir -p data backup
                    echo old > data/old.log && touch -d '10 days ago' data/old.log
                    echo new > data/new.log
                    find data -type f -mtime +7 -print0 | tar --null -czf backup/old-files.tar.gz --files-from=-
                    echo "backed up:"; tar -tzf backup/old-files.tar.gz""" + "\n```")
                    .reply("The script archives files older than 7 days.\nTERMINATE");
            UserProxyAgent shellExecutor = runtime.userProxyAgent("shell_executor", o -> o
                    .humanInputMode(HumanInputMode.NEVER)
                    .codeExecutionConfig(Map.of("work_dir", "shell_workspace", "use_docker", "ubuntu:20.04", "timeout", 30)));
            AssistantAgent shellAssistant = runtime.assistantAgent("shell_assistant", """
                    You are a shell scripting expert.
                    Write bash scripts for common tasks.""", TestRuntimes.llm(llm));

            ChatResult result = shellExecutor.initiateChat(shellAssistant, "Write a bash script to backup files older than 7 days");

            assertEquals("exitcode: 0 (execution succeeded)\nCode output: backed up:\ndata/old.log\n",
                    result.chatHistory().get(2).content());
        }
    }

    @Test
    void nodeScriptReadsJsonFromStdin() throws Exception {
        try (FakeModel llm = new FakeModel()) {
            llm.reply("```javascript\n" + """
                    // filename: process.js
                    let input = "";
                    process.stdin.on("data", c => input += c);
                    process.stdin.on("end", () => {
                      try {
                        const items = JSON.parse(input);
                        const total = items.reduce((sum, i) => sum + i.value, 0);
                        console.log(`items: ${items.length}, total: ${total}`);
                      } catch (e) {
                        console.error(`invalid JSON: ${e.message}`);
                        process.exit(1);
                      }
                    });""" + "\n```")
                    .reply("The script needs JSON on stdin; it is saved in the workspace, so feed it some:\n```sh\n"
                            + "echo '[{\"name\":\"a\",\"value\":3},{\"name\":\"b\",\"value\":4}]' | node process.js\n```")
                    .reply("TERMINATE");
            UserProxyAgent jsExecutor = runtime.userProxyAgent("js_executor", o -> o
                    .humanInputMode(HumanInputMode.NEVER)
                    .codeExecutionConfig(Map.of("work_dir", "js_workspace", "use_docker", "node:18-slim", "timeout", 45)));
            AssistantAgent jsAssistant = runtime.assistantAgent("js_assistant", """
                    You are a JavaScript expert.
                    Write modern ES6+ code with proper error handling.""", TestRuntimes.llm(llm));

            ChatResult result = jsExecutor.initiateChat(jsAssistant, "Create a Node.js script to process JSON data from stdin");

            // run alone, the script gets no stdin and says so; the file stays in the work_dir, and the
            // next turn pipes JSON into it
            String first = result.chatHistory().get(2).content();
            assertTrue(first.startsWith("exitcode: 1 (execution failed)\nCode output: invalid JSON"), first);
            assertEquals("exitcode: 0 (execution succeeded)\nCode output: items: 2, total: 7\n",
                    result.chatHistory().get(4).content());
        }
    }

    @Test
    void webScraperFailsCleanlyWithoutNetwork() throws Exception {
        try (FakeModel llm = new FakeModel()) {
            // plain sockets: the minimal python image has no http package (urllib.request needs it)
            llm.reply(python("""
                    import socket
                    conn = socket.create_connection(("api.weather.invalid", 80), timeout=5)
                    conn.sendall(b"GET /today HTTP/1.0\\r\\nHost: api.weather.invalid\\r\\n\\r\\n")
                    print(conn.recv(200))"""))
                    .reply("The sandbox has no network access, so the API cannot be reached.\nTERMINATE");
            AssistantAgent webScraper = runtime.assistantAgent("web_scraper", """
                    You are a web scraping expert.
                    Use beautifulsoup4 and requests for data extraction.""", TestRuntimes.llm(llm));
            UserProxyAgent scraperExecutor = runtime.userProxyAgent("scraper_executor", o -> o
                    .humanInputMode(HumanInputMode.NEVER)
                    .codeExecutionConfig(Map.of("work_dir", "scraping_workspace", "use_docker", true, "timeout", 60)));

            ChatResult result = scraperExecutor.initiateChat(webScraper, "Scrape weather data from a public API");

            ExecutionRecord run = result.executions().get(0);
            assertEquals(Verdict.RUNTIME_ERROR, run.verdict());
            assertEquals(1, run.exitCode());
            assertTrue(run.output().contains("socket.gaierror"), run.output());
            assertTrue(result.chatHistory().get(2).content().startsWith("exitcode: 1 (execution failed)\nCode output: "));
            assertEquals(ConversationStatus.TERMINATED, result.status());
        }
    }

    @Test
    void buggyDivideIsFixedOnTheNextTurn() throws Exception {
        String buggyCode = """
                def divide_numbers(a, b):
                    return a / b

                # This will cause ZeroDivisionError
                result = divide_numbers(10, 0)
                print(result)""";
        try (FakeModel llm = new FakeModel()) {
            llm.reply("Let me run it as given:\n" + python(buggyCode))
                    .reply("The root cause is a division by zero. Fixed:\n" + python("""
                            def divide_numbers(a, b):
                                if b == 0:
                                    return None
                                return a / b

                            print(divide_numbers(10, 0))
                            print(divide_numbers(10, 4))"""))
                    .reply("Fixed: the function now guards against b == 0.\nTERMINATE");
            AssistantAgent debugAssistant = runtime.assistantAgent("debug_assistant", """
                    You are an expert debugger. When code fails:
                    1. Analyze the error message
                    2. Identify the root cause
                    3. Suggest specific fixes
                    4. Provide corrected code
                    5. Explain the fix""", TestRuntimes.llm(llm));
            UserProxyAgent robustExecutor = runtime.userProxyAgent("robust_executor", o -> o
                    .humanInputMode(HumanInputMode.NEVER)
                    .maxRetries(3)
                    .codeExecutionConfig(Map.of("use_docker", true, "timeout", 60)));

            RetryOutcome outcome = robustExecutor.executeCodeWithRetry(buggyCode, debugAssistant);

            assertTrue(outcome.succeeded());
            List<ChatMessage> history = outcome.result().chatHistory();
            assertTrue(history.get(0).content().startsWith("Execute this code and debug if needed:\n\n```python\n"));
            String failed = history.get(2).content();
            assertTrue(failed.startsWith("exitcode: 1 (execution failed)\nCode output: "), failed);
            assertTrue(failed.contains("ZeroDivisionError: division by zero"), failed);
            assertEquals("exitcode: 0 (execution succeeded)\nCode output: None\n2.5\n", history.get(4).content());
            // the assistant was shown the traceback before it fixed the code
            var third = llm.requests().get(1).get("messages");
            assertTrue(third.get(third.size() - 1).get("content").asText().contains("ZeroDivisionError"));
            assertEquals(1, outcome.history().size());
            assertEquals(1, robustExecutor.executionHistory().size());
            assertTrue(robustExecutor.executionHistory().get(0).success());
        }
    }
}
