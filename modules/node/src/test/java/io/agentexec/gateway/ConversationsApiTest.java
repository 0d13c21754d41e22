package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import io.agentexec.testkit.FakeModel;

/**
 * Conversations through the gateway, over real HTTP on 127.0.0.1: a node on the cluster backend (H2
 * in memory) hosting the agents, the bundled replay model and a scripted OpenAI-compatible server on
 * loopback, code run in real Docker sandboxes through the cluster.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ConversationsApiTest {
    private FakeModel model;
    private TestNode node;

    /** An operator's endpoint that nothing answers (a port just freed), and the name of a key variable nobody set. */
    private String downUrl;
    private static final String KEY_VARIABLE = "AGENTEXEC_TEST_OPERATORS_KEY_VARIABLE";

    @BeforeAll
    void start() throws Exception {
        model = new FakeModel("```python\nprint(6 * 7)\n```", "It printed 42.\nTERMINATE", "Shall I go on?");
        try (java.net.ServerSocket freed = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            downUrl = "http://127.0.0.1:" + freed.getLocalPort() + "/operators-internal-llm/v1";
        }
        node = AssembledNodes.start("cluster", Map.of(
                "agentexec.cluster.persistence.url", "jdbc:h2:mem:gateway-conversations;DB_CLOSE_DELAY=-1;DATABASE_TO_UPPER=false",
                "pekko.remote.artery.canonical.port", 0,
                "agentexec.agents.llm.base-url", model.baseUrl(),
                "agentexec.agents.llm.api-key-env", "",
                "agentexec.agents.conversations.models.down.base-url", downUrl,
                "agentexec.agents.conversations.models.down.model", "down-model",
                "agentexec.agents.conversations.models.keyed.base-url", downUrl,
                "agentexec.agents.conversations.models.keyed.model", "keyed-model",
                "agentexec.agents.conversations.models.keyed.api-key-env", KEY_VARIABLE));
    }

    /** What the operator configured and a tenant must never read: endpoints, key variables, host paths. */
    private List<String> operatorsSecrets() {
        return List.of(model.baseUrl(), downUrl, "operators-internal-llm", KEY_VARIABLE,
                io.agentexec.agents.ModelCatalog.bundledMedianReplay().toString(), "baseUrl", "apiKeyEnv", "replayScript",
                "requestTimeout");
    }

    private void assertNoOperatorsSecrets(String shown) {
        for (String secret : operatorsSecrets()) {
            assertTrue(!shown.contains(secret), "'" + secret + "' shown to the tenant in " + shown);
        }
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

    /** The seed's two agents as a conversation config (shared with the gRPC conversation test). */
    static String config(String model, String humanInputMode) {
        return """
                {"assistant": {"name": "coding_assistant", "system_message": "You are a Python expert.",
                               "llm_config": {"model": "%s"}},
                 "user_proxy": {"name": "code_executor", "human_input_mode": "%s",
                                "code_execution_config": {"work_dir": "python_workspace", "use_docker": true, "timeout": 30}},
                 "max_turns": 4}""".formatted(model, humanInputMode);
    }

    private JsonNode awaitStatus(String id, String key, String status) throws InterruptedException {
        JsonNode t = null;
        for (int i = 0; i < 1200; i++) {
            TestNode.Reply r = node.get("/v1/conversations/" + id, key);
            assertEquals(200, r.status(), r.body());
            t = r.json();
            if (t.get("status").asText().equals(status)) {
                return t;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("conversation " + id + " never reached " + status + ": " + t);
    }

    private static List<String> contents(JsonNode transcript) {
        List<String> out = new ArrayList<>();
        transcript.get("events").forEach(e -> {
            if (e.get("type").asText().equals("message-sent")) {
                out.add(e.get("body").get("message").get("content").asText());
            }
        });
        return out;
    }

    @Test
    void theReplayModelsChatRunsEndToEndAndItsEventsStreamAsSse() throws Exception {
        TestNode.Reply started = node.post("/v1/conversations", TestNode.ALICE,
                "{\"config\": " + config("replay-median", "NEVER") + ", \"message\": \"Write a median function\"}");
        assertEquals(201, started.status(), started.body());
        String id = started.json().get("id").asText();
        assertEquals("/v1/conversations/" + id, started.header("Location"));

        JsonNode t = awaitStatus(id, TestNode.ALICE, "ended");
        List<String> messages = contents(t);
        assertEquals("Write a median function", messages.get(0));
        assertTrue(messages.get(2).startsWith("exitcode: 0 (execution succeeded)\nCode output: odd: 2\neven: 2.5\n"),
                messages.get(2));
        assertTrue(messages.get(3).endsWith("TERMINATE"));
        JsonNode last = t.get("events").get(t.get("events").size() - 1);
        assertEquals("terminated", last.get("type").asText());

        // the whole stream after the end: every event once, in order, then the stream closes
        TestNode.Reply sse = node.get("/v1/conversations/" + id + "/events", TestNode.ALICE);
        assertEquals(200, sse.status());
        assertTrue(sse.body().contains("event: chat-started"), sse.body());
        assertTrue(sse.body().contains("event: terminated"), sse.body());
        // resumed after the third event: only later ones
        TestNode.Reply resumed = node.send("GET", "/v1/conversations/" + id + "/events", TestNode.ALICE, null, null,
                Map.of("Last-Event-ID", "3"));
        assertTrue(!resumed.body().contains("id: 3\n") && resumed.body().contains("id: 4\n"), resumed.body());

        // the tenant reads what it sent and the model's name, nothing of the operator's set-up
        assertNoOperatorsSecrets(t.toString());
        assertNoOperatorsSecrets(sse.body());
        assertTrue(t.toString().contains("replay-median"), t.toString());

        // another tenant does not see it
        assertEquals(404, node.get("/v1/conversations/" + id, TestNode.BOB).status());
        assertEquals(404, node.get("/v1/conversations/" + id + "/events", TestNode.BOB).status());
    }

    @Test
    void aLiveModelOnLoopbackAndAHumanWhoTypesExit() throws Exception {
        TestNode.Reply started = node.post("/v1/conversations", TestNode.ALICE,
                "{\"config\": " + config("default", "TERMINATE") + ", \"message\": \"Print six times seven\"}");
        assertEquals(201, started.status(), started.body());
        String id = started.json().get("id").asText();

        // the assistant's TERMINATE makes a TERMINATE-mode proxy ask its human
        JsonNode waiting = awaitStatus(id, TestNode.ALICE, "awaiting_human");
        List<String> messages = contents(waiting);
        assertEquals("exitcode: 0 (execution succeeded)\nCode output: 42\n", messages.get(2));
        assertEquals("It printed 42.\nTERMINATE", messages.get(3));
        assertTrue(model.requests().get(0).toString().contains("Print six times seven"));

        TestNode.Reply input = node.post("/v1/conversations/" + id + "/input", TestNode.ALICE, "{\"text\": \"exit\"}");
        assertEquals(200, input.status(), input.body());
        JsonNode ended = awaitStatus(id, TestNode.ALICE, "ended");
        assertTrue(ended.toString().contains("typed exit"), ended.toString());

        // the chat is over: more input is a client error
        TestNode.Reply late = node.post("/v1/conversations/" + id + "/input", TestNode.ALICE, "{\"text\": \"more\"}");
        assertEquals(400, late.status(), late.body());
        assertTrue(late.body().contains("not waiting for human input"), late.body());
    }

    /** A model that fails says so in the transcript without naming the operator's endpoint or key variable. */
    @Test
    void failedModelsAreReportedWithoutTheOperatorsEndpointOrKeyVariable() throws Exception {
        for (String name : List.of("down", "keyed")) {
            TestNode.Reply started = node.post("/v1/conversations", TestNode.ALICE,
                    "{\"config\": " + config(name, "NEVER") + ", \"message\": \"Print six times seven\"}");
            assertEquals(201, started.status(), started.body());
            String id = started.json().get("id").asText();
            JsonNode failed = awaitStatus(id, TestNode.ALICE, "failed");
            assertNoOperatorsSecrets(failed.toString());
            assertNoOperatorsSecrets(node.get("/v1/conversations/" + id + "/events", TestNode.ALICE).body());
            JsonNode last = failed.get("events").get(failed.get("events").size() - 1);
            assertEquals("failed", last.get("type").asText());
            assertTrue(last.toString().contains(name), "the model the tenant chose is named: " + last);
        }
    }

    @Test
    void badConfigurationsAreRefusedNamingTheKey() {
        record Case(String body, String says) { }
        List<Case> cases = List.of(
                new Case("{\"config\": " + config("no-such-model", "NEVER") + ", \"message\": \"hi\"}", "no model 'no-such-model'"),
                new Case("{\"config\": {\"assistant\": {}, \"user_proxy\": {}, \"colour\": 1}, \"message\": \"hi\"}", "unknown key 'colour'"),
                new Case("{\"config\": {\"user_proxy\": {\"name\": \"u\"}}, \"message\": \"hi\"}", "config.assistant is required"),
                new Case("{\"config\": " + config("replay-median", "NEVER").replace("\"timeout\": 30", "\"timeout\": 0")
                        + ", \"message\": \"hi\"}", "timeout must be at least 1"),
                new Case("{\"config\": " + config("replay-median", "SOMETIMES") + ", \"message\": \"hi\"}", "human_input_mode"),
                new Case("{\"config\": " + config("replay-median", "NEVER").replace("\"llm_config\": {\"model\": \"replay-median\"}",
                        "\"llm_config\": {\"model\": \"replay-median\", \"base_url\": \"http://evil\"}")
                        + ", \"message\": \"hi\"}", "unknown key 'base_url'"),
                new Case("{\"config\": " + config("replay-median", "NEVER").replace("\"use_docker\": true",
                        "\"use_docker\": true, \"docker_run_args\": [\"--privileged\"]") + ", \"message\": \"hi\"}", "--privileged"),
                new Case("{\"config\": " + config("replay-median", "NEVER") + "}", "'message'"),
                new Case("{\"config\": 3, \"message\": \"hi\"}", "'config'"));
        for (Case c : cases) {
            TestNode.Reply r = node.post("/v1/conversations", TestNode.ALICE, c.body());
            assertEquals(400, r.status(), c.body() + " -> " + r.body());
            assertEquals("invalid_request", r.errorCode(), r.body());
            assertTrue(r.body().contains(c.says()), c.says() + " not in " + r.body());
        }
        assertEquals(404, node.get("/v1/conversations/conv-unknown", TestNode.ALICE).status());
        assertEquals(404, node.get("/v1/conversations/conv-unknown/events", TestNode.ALICE).status());
        assertEquals(404, node.post("/v1/conversations/conv-unknown/input", TestNode.ALICE, "{\"text\": \"x\"}").status());
        assertEquals(401, node.post("/v1/conversations", null, "{}").status());
    }
}
