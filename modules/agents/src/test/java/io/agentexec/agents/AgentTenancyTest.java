package io.agentexec.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.agentexec.agents.entity.AgentEntity;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Agents are their tenant's: two tenants whose chats both name their proxy {@code code_executor} have two agents,
 * each with its own statistics (and cache, and retry history). Before, both chats' runs landed in one shared
 * {@code code_executor} entity. Real chats (the bundled replay model), real Docker.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class AgentTenancyTest {
    private static final String SPEC = """
            {"assistant": {"name": "coding_assistant", "llm_config": {"model": "replay-median"}},
             "user_proxy": {"name": "code_executor", "human_input_mode": "NEVER",
                            "code_execution_config": {"work_dir": "w", "use_docker": true, "timeout": 30}},
             "max_turns": 4}""";
    private AgentRuntime runtime;
    private ConversationFacade facade;

    @BeforeAll
    void start() {
        runtime = AgentRuntime.start(TestRuntimes.h2());
        facade = ConversationFacade.create(runtime, TestRuntimes.h2());
    }

    @AfterAll
    void stop() {
        runtime.close();
    }

    private void chat(String id) throws Exception {
        JsonNode spec = new ObjectMapper().readTree(SPEC);
        facade.start(id, spec, "Write a median function").toCompletableFuture().get(60, TimeUnit.SECONDS);
        for (int i = 0; i < 1200; i++) {
            ConversationStatus status = facade.transcript(id).toCompletableFuture().get(30, TimeUnit.SECONDS)
                    .orElseThrow().status();
            if (status == ConversationStatus.TERMINATED || status == ConversationStatus.FAILED) {
                assertEquals(ConversationStatus.TERMINATED, status);
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("chat " + id + " did not end");
    }

    /** The agent's runs in its tenant's statistics (the shared executors keep them per tenant, by agent). */
    private long executions(Optional<String> tenant, String agent) throws Exception {
        io.agentexec.cluster.port.Caller caller = new io.agentexec.cluster.port.Caller(tenant,
                runtime.cluster().policy().policy(), 0);
        return runtime.seedExecutors().stats(caller, Optional.of(agent)).toCompletableFuture().get(30, TimeUnit.SECONDS)
                .overall().count();
    }

    @Test
    void twoTenantsNamingTheirProxyAlikeHaveTwoAgents() throws Exception {
        chat("alice.conv-tenancy");
        chat("bob.conv-tenancy");
        chat("bob.conv-tenancy-2");
        assertEquals(1, executions(Optional.of("alice"), "code_executor"), "alice's agent ran her chat's code");
        assertEquals(2, executions(Optional.of("bob"), "code_executor"), "bob's agent ran his two chats' code");
        assertEquals(0, executions(Optional.empty(), "code_executor"), "no agent shared between tenants");
    }
}
