package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.agentexec.agents.execution.WorkspaceExecutions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import io.agentexec.testkit.FakeModel;

/**
 * A tenant's conversations are held to the same policy as its HTTP executions (the review found chats
 * bypassing all of it): AG2's docker_run_args and timeout are brought down to the operator's ceilings, an
 * image the policy does not allow is refused, and the sandboxes a chat's code runs in are the tenant's own,
 * on its live-sandbox quota. Real HTTP on loopback, a scripted model, real Docker.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ConversationPolicyTest {
    private FakeModel model;
    private TestNode node;

    @BeforeAll
    void start() throws Exception {
        model = new FakeModel();
        node = AssembledNodes.start("cluster", Map.of(
                "agentexec.cluster.persistence.url", "jdbc:h2:mem:gateway-conversation-policy;DB_CLOSE_DELAY=-1;DATABASE_TO_UPPER=false",
                "pekko.remote.artery.canonical.port", 0,
                "agentexec.agents.llm.base-url", model.baseUrl(),
                "agentexec.agents.llm.api-key-env", ""));
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

    private static String config(String codeExecutionConfig, String humanInputMode) {
        return """
                {"assistant": {"name": "coding_assistant", "llm_config": {"model": "default"}},
                 "user_proxy": {"name": "code_executor", "human_input_mode": "%s",
                                "code_execution_config": %s},
                 "max_turns": 4}""".formatted(humanInputMode, codeExecutionConfig);
    }

    private String startChat(String key, String codeExecutionConfig) {
        return startChat(key, codeExecutionConfig, "NEVER");
    }

    private String startChat(String key, String codeExecutionConfig, String humanInputMode) {
        TestNode.Reply started = node.post("/v1/conversations", key,
                "{\"config\": " + config(codeExecutionConfig, humanInputMode) + ", \"message\": \"go\"}");
        assertEquals(201, started.status(), started.body());
        return started.json().get("id").asText();
    }

    /** The reply the proxy gave the assistant's code: the third message of the chat. */
    private String codeReply(String id, String key) throws InterruptedException {
        for (int i = 0; i < 1200; i++) {
            JsonNode t = node.get("/v1/conversations/" + id, key).json();
            List<String> messages = new ArrayList<>();
            t.get("events").forEach(e -> {
                if (e.get("type").asText().equals("message-sent")) {
                    messages.add(e.get("body").get("message").get("content").asText());
                }
            });
            if (messages.size() >= 3) {
                return messages.get(2);
            }
            if (t.get("status").asText().equals("failed")) {
                throw new AssertionError("the chat failed: " + t);
            }
            Thread.sleep(100);
        }
        throw new AssertionError("no code reply in conversation " + id);
    }

    private void awaitEnded(String id, String key) throws InterruptedException {
        for (int i = 0; i < 1200; i++) {
            if (node.get("/v1/conversations/" + id, key).json().get("status").asText().equals("ended")) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("conversation " + id + " did not end");
    }

    @Test
    void aChatAskingForMoreThanTheCeilingsRunsWithinThemInTheTenantsOwnSandbox() throws Exception {
        model.then("```sh\ncat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max "
                + "/sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/cpu/cpu.cfs_period_us\n```", "TERMINATE");
        String id = startChat(TestNode.ALICE, """
                {"work_dir": "greedy", "use_docker": true, "timeout": 86400,
                 "docker_run_args": ["--memory", "16g", "--cpus", "64", "--pids-limit", "1000000"]}""", "TERMINATE");
        // the operator's default ceilings: 4 GiB, 512 pids, 2 CPUs (quota 2 x the period)
        assertEquals("exitcode: 0 (execution succeeded)\nCode output: 4294967296\n512\n200000\n100000\n",
                codeReply(id, TestNode.ALICE));
        // the chat's sandbox is alice's: she sees it, bob does not (while the chat waits for its human)
        for (int i = 0; i < 1200 && !node.get("/v1/conversations/" + id, TestNode.ALICE).json().get("status").asText()
                .equals("awaiting_human"); i++) {
            Thread.sleep(100);
        }
        String scoped = WorkspaceExecutions.sandboxId("alice." + id + "/code_executor/greedy", "image");
        String sandbox = scoped.substring("alice.".length());
        TestNode.Reply mine = node.get("/v1/sandboxes/" + sandbox, TestNode.ALICE);
        assertEquals(200, mine.status(), mine.body());
        assertEquals(404, node.get("/v1/sandboxes/" + sandbox, TestNode.BOB).status());
        assertEquals(200, node.post("/v1/conversations/" + id + "/input", TestNode.ALICE, "{\"text\": \"exit\"}").status());
        awaitEnded(id, TestNode.ALICE);
    }

    @Test
    void aChatInAnImageThePolicyDoesNotAllowRunsNothing() throws Exception {
        model.then("```python\nprint('ran')\n```", "TERMINATE");
        String id = startChat(TestNode.ALICE, "{\"work_dir\": \"evil\", \"use_docker\": \"evil/escape:latest\"}");
        String reply = codeReply(id, TestNode.ALICE);
        assertTrue(reply.startsWith("exitcode: 1 (execution failed)\nCode output: policy: image 'evil/escape:latest' "
                + "is not allowed"), reply);
        awaitEnded(id, TestNode.ALICE);
    }

    @Test
    void aChatsSandboxesCountAgainstTheTenantsLiveSandboxQuota() throws Exception {
        // carol may hold one live sandbox: an HTTP sandbox takes it, so her chat's code cannot open another
        TestNode.Reply held = node.post("/v1/sandboxes", TestNode.CAROL, "{\"language\": \"python\"}");
        assertEquals(201, held.status(), held.body());
        model.then("```python\nprint('ran')\n```", "TERMINATE");
        String refused = startChat(TestNode.CAROL, "{\"work_dir\": \"quota\", \"use_docker\": true}");
        String reply = codeReply(refused, TestNode.CAROL);
        assertTrue(reply.startsWith("exitcode: 1 (execution failed)\nCode output: not run: tenant carol holds 1 live "
                + "sandboxes, its maximum of 1"), reply);
        awaitEnded(refused, TestNode.CAROL);

        // with the slot given back, the chat's sandbox takes it; the ended chat gives it back in turn
        assertEquals(200, node.delete("/v1/sandboxes/" + held.json().get("id").asText(), TestNode.CAROL).status());
        model.then("```python\nprint('ran')\n```", "TERMINATE");
        String ran = startChat(TestNode.CAROL, "{\"work_dir\": \"quota2\", \"use_docker\": true}");
        assertEquals("exitcode: 0 (execution succeeded)\nCode output: ran\n", codeReply(ran, TestNode.CAROL));
        awaitEnded(ran, TestNode.CAROL);
        TestNode.Reply again = null;
        for (int i = 0; i < 300; i++) {
            again = node.post("/v1/sandboxes", TestNode.CAROL, "{\"language\": \"python\"}");
            if (again.status() == 201) {
                break;
            }
            Thread.sleep(100);
        }
        assertEquals(201, again.status(), "the ended chat gave its slot back: " + again.body());
        node.delete("/v1/sandboxes/" + again.json().get("id").asText(), TestNode.CAROL);
    }
}
