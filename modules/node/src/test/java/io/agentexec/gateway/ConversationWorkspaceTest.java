package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.agentexec.testkit.FakeModel;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A chat's workspace (AG2 issue 13 item 6), over real HTTP on 127.0.0.1: the seed's data-analysis scenario, a scripted
 * model whose code draws chart.png with matplotlib (the datascience profile's image) and a shell block that reads what
 * the python block wrote (one sandbox per workspace, shared by its languages); after the chat ends its files are listed
 * and read, the transcript says how long they are kept, DELETE removes them. Real Docker sandboxes through the cluster.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ConversationWorkspaceTest {
    private static final byte[] PNG_MAGIC = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    private static final String ANALYSIS = """
            ```python
            import matplotlib
            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
            sales = [120, 135, 150, 160, 175]
            plt.plot(range(1, 6), sales)
            plt.title("Monthly sales")
            plt.savefig("chart.png")
            with open("summary.txt", "w") as f:
                f.write("mean %.1f" % (sum(sales) / len(sales)))
            print("saved chart.png")
            ```
            ```sh
            test -s chart.png && cat summary.txt
            ```""";

    private FakeModel model;
    private TestNode node;

    @BeforeAll
    void start() throws Exception {
        model = new FakeModel(ANALYSIS, "The chart is in chart.png.\nTERMINATE", ANALYSIS, "Done.\nTERMINATE");
        node = AssembledNodes.start("cluster", Map.of(
                "agentexec.cluster.persistence.url", "jdbc:h2:mem:conversation-workspace;DB_CLOSE_DELAY=-1;DATABASE_TO_UPPER=false",
                "pekko.remote.artery.canonical.port", 0,
                "agentexec.agents.llm.base-url", model.baseUrl(),
                "agentexec.agents.llm.api-key-env", "",
                "agentexec.agents.workspace-retention", "5m"));
    }

    @AfterAll
    void stop() {
        if (node != null) {
            node.close();
        }
        if (model != null) {
            model.close();
        }
    }

    private static String config() {
        return """
                {"assistant": {"name": "data_analyst", "llm_config": {"model": "default"}},
                 "user_proxy": {"name": "analysis_executor", "human_input_mode": "NEVER", "profile": "datascience",
                                "code_execution_config": {"work_dir": "analysis", "use_docker": true, "timeout": 60}},
                 "max_turns": 4}""";
    }

    private JsonNode awaitEnded(String id) throws InterruptedException {
        JsonNode t = null;
        for (int i = 0; i < 1800; i++) {
            TestNode.Reply r = node.get("/v1/conversations/" + id, TestNode.ALICE);
            assertEquals(200, r.status(), r.body());
            t = r.json();
            if (t.get("status").asText().equals("ended") || t.get("status").asText().equals("failed")) {
                return t;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("conversation " + id + " never ended: " + t);
    }

    private HttpResponse<byte[]> getBytes(String path, String key) throws Exception {
        return HttpClient.newHttpClient().send(HttpRequest.newBuilder(URI.create(node.base + path))
                .header("Authorization", "Bearer " + key).GET().build(), HttpResponse.BodyHandlers.ofByteArray());
    }

    /** On the cluster backend too, an executors' answer names its runs by the ids the tenant knows (never TENANT:ID). */
    @Test
    void executorAnswersOnTheClusterNameRunsByTheTenantsIds() throws InterruptedException {
        String body = "{\"language\":\"python\",\"code\":\"print(int(input()) + 1)\",\"retries\":2,"
                + "\"tests\":[{\"stdin\":\"1\",\"expectedStdout\":\"2\"}]}";
        TestNode.Reply r = node.post("/v1/executions", TestNode.ALICE, body);
        // a node that has only just started may not have met its worker yet (503 overloaded): bounded wait
        for (int i = 0; i < 600 && r.status() == 503; i++) {
            Thread.sleep(100);
            r = node.post("/v1/executions", TestNode.ALICE, body);
        }
        assertEquals(200, r.status(), r.body());
        JsonNode j = r.json();
        assertTrue(j.get("id").asText().startsWith("exe-"), r.body());
        String caseId = j.get("tests").get("cases").get(0).get("executionId").asText();
        assertTrue(caseId.startsWith("exe-"), r.body());
        assertEquals(200, node.get("/v1/executions/" + caseId, TestNode.ALICE).status(), "readable by its id");
    }

    @Test
    void theDataAnalysisChatsChartIsReadOverHttpAfterTheChatEndsUntilDeleted() throws Exception {
        TestNode.Reply started = node.post("/v1/conversations", TestNode.ALICE,
                "{\"config\": " + config() + ", \"message\": \"Plot the monthly sales and save the chart as chart.png\"}");
        assertEquals(201, started.status(), started.body());
        String id = started.json().get("id").asText();
        JsonNode ended = awaitEnded(id);
        assertEquals("ended", ended.get("status").asText(), ended.toString());
        assertTrue(ended.toString().contains("saved chart.png") && ended.toString().contains("mean 148.0"),
                "the sh block read what the python block wrote (one workspace): " + ended);
        assertTrue(ended.get("workspace").asText().contains("kept after the chat ends for 300 s"), ended.toString());

        TestNode.Reply files = node.get("/v1/conversations/" + id + "/files", TestNode.ALICE);
        assertEquals(200, files.status(), files.body());
        assertTrue(files.body().contains("\"chart.png\"") && files.body().contains("\"summary.txt\""), files.body());

        HttpResponse<byte[]> chart = getBytes("/v1/conversations/" + id + "/files/chart.png", TestNode.ALICE);
        assertEquals(200, chart.statusCode(), new String(chart.body()));
        assertTrue(chart.body().length > 1000, "a real chart: " + chart.body().length + " bytes");
        assertArrayEquals(PNG_MAGIC, Arrays.copyOf(chart.body(), PNG_MAGIC.length), "a PNG");

        // another tenant does not see it
        assertEquals(404, getBytes("/v1/conversations/" + id + "/files/chart.png", TestNode.BOB).statusCode());
        assertEquals(404, node.get("/v1/conversations/" + id + "/files", TestNode.BOB).status());
        // a path out of the workspace is refused
        assertEquals(400, getBytes("/v1/conversations/" + id + "/files/..%2Fetc%2Fpasswd", TestNode.ALICE).statusCode());

        // the chat's code counts in the tenant's statistics, under the proxy's name
        TestNode.Reply stats = node.get("/v1/stats?executor=analysis_executor", TestNode.ALICE);
        assertEquals(200, stats.status(), stats.body());
        assertTrue(stats.json().get("overall").get("count").asInt() >= 1, stats.body());

        TestNode.Reply deleted = node.delete("/v1/conversations/" + id, TestNode.ALICE);
        assertEquals(200, deleted.status(), deleted.body());
        // the sandbox is closed asynchronously: poll (bounded) until the file is gone
        int status = 200;
        for (int i = 0; i < 300 && status == 200; i++) {
            status = getBytes("/v1/conversations/" + id + "/files/chart.png", TestNode.ALICE).statusCode();
            if (status == 200) {
                Thread.sleep(100);
            }
        }
        assertEquals(404, status, "deleted with its conversation");
        assertEquals(200, node.get("/v1/conversations/" + id, TestNode.ALICE).status(), "the transcript stays");
        assertEquals(404, node.delete("/v1/conversations/no-such-chat", TestNode.ALICE).status());
    }
}
