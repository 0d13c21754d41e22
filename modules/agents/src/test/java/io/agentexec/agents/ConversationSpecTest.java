package io.agentexec.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.typesafe.config.ConfigFactory;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The JSON a remote client sends to start a chat, and the models it may name. */
class ConversationSpecTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private final AgentsSettings settings = AgentsSettings.fromConfig(ConfigFactory.load());
    private final ModelCatalog models = new ModelCatalog(Map.of("replay-median",
            LlmConfig.replay(ModelCatalog.bundledMedianReplay().toString())));

    private ConversationSpec parse(String json) throws Exception {
        return ConversationSpec.fromJson(JSON.readTree(json), models, settings,
                io.agentexec.cluster.executors.SeedExecutors.local(ConfigFactory.load()));
    }

    private static final String GOOD = """
            {"assistant": {"name": "a", "llm_config": {"model": "replay-median", "temperature": 0.5}},
             "user_proxy": {"name": "u", "human_input_mode": "TERMINATE", "human_input_timeout": 5,
                            "code_execution_config": {"work_dir": "w", "use_docker": false, "timeout": 9}},
             "max_turns": 3}""";

    @Test
    void theSeedsChatAsJson() throws Exception {
        ConversationSpec spec = parse(GOOD);
        assertEquals("u", spec.initiator().name());
        assertEquals(HumanInputMode.TERMINATE, spec.initiator().humanInputMode());
        assertEquals(Isolation.BWRAP, spec.initiator().codeExecution().orElseThrow().isolation());
        assertEquals(5, spec.initiator().humanInputTimeout().toSeconds());
        assertEquals("a", spec.recipient().name());
        assertEquals(0.5, spec.recipient().llmConfig().orElseThrow().temperature());
        assertEquals(3, spec.maxTurns().getAsInt());
        assertTrue(parse(GOOD.replace("{\"work_dir\": \"w\", \"use_docker\": false, \"timeout\": 9}", "false"))
                .initiator().codeExecution().isEmpty());
    }

    @Test
    void theUserProxyTakesTheSeedsExecutors() throws Exception {
        ConversationSpec spec = parse(GOOD.replace("\"human_input_timeout\": 5,",
                "\"human_input_timeout\": 5, \"policy\": \"secure\", \"retries\": 3, \"profile\": \"simple\", \"cache\": true,"));
        ExecutorOptions o = spec.initiator().executorOptions();
        assertEquals(java.util.Optional.of("secure"), o.policy());
        assertEquals(java.util.Optional.of(3), o.retries());
        assertEquals("simple", o.resourceProfile());
        assertTrue(o.cacheResults());
        ConversationSpec patterns = parse(GOOD.replace("\"human_input_timeout\": 5,",
                "\"human_input_timeout\": 5, \"policy\": [\"rm -rf\"],"));
        assertEquals(List.of("rm -rf"), patterns.initiator().executorOptions().forbiddenPatterns());
        for (String[] bad : new String[][] {{"\"policy\": \"paranoid\",", "user_proxy.policy: unknown policy 'paranoid'"},
                {"\"retries\": 0,", "user_proxy.retries"}, {"\"retries\": 99,", "user_proxy.retries"},
                {"\"cache\": \"yes\",", "user_proxy.cache"}, {"\"profile\": \"gpu\",", "gpu"},
                {"\"profile\": \"simple\", \"resource_profile\": \"medium\",", "not both"}}) {
            AgentConfigException e = assertThrows(AgentConfigException.class,
                    () -> parse(GOOD.replace("\"human_input_timeout\": 5,", "\"human_input_timeout\": 5, " + bad[0])));
            assertTrue(e.getMessage().contains(bad[1]), bad[1] + " not in: " + e.getMessage());
        }
    }

    @Test
    void everyErrorNamesItsKey() {
        Map<String, String> cases = Map.ofEntries(
                Map.entry(GOOD.replace("\"max_turns\": 3", "\"max_turns\": 0"), "max_turns must be at least 1"),
                Map.entry(GOOD.replace("\"max_turns\": 3", "\"colour\": 3"), "unknown key 'colour'"),
                Map.entry(GOOD.replace("\"temperature\": 0.5", "\"api_key_env\": \"AWS_SECRET\""), "unknown key 'api_key_env'"),
                Map.entry(GOOD.replace("replay-median", "gpt-5"), "no model 'gpt-5'"),
                Map.entry(GOOD.replace("\"temperature\": 0.5", "\"temperature\": \"hot\""), "temperature must be a number"),
                Map.entry(GOOD.replace("\"human_input_timeout\": 5", "\"human_input_timeout\": 0"), "human_input_timeout"),
                Map.entry(GOOD.replace("\"name\": \"u\"", "\"name\": \"a\""), "must differ"),
                Map.entry(GOOD.replace("\"name\": \"u\"", "\"name\": 7"), "user_proxy.name must be a string"),
                Map.entry(GOOD.replace("\"work_dir\": \"w\"", "\"work_dir\": \"../etc\""), "work_dir"),
                Map.entry(GOOD.replace("\"use_docker\": false", "\"use_docker\": false, \"cwd\": \"/\""), "unknown key 'cwd'"),
                Map.entry("{\"user_proxy\": {\"name\": \"u\"}}", "config.assistant is required"),
                Map.entry("[1]", "config must be an object"));
        cases.forEach((json, says) -> {
            AgentConfigException e = assertThrows(AgentConfigException.class, () -> parse(json), json);
            assertTrue(e.getMessage().contains(says), says + " not in: " + e.getMessage());
        });
    }

    @Test
    void theCatalogSaysWhatADefaultModelNeeds() throws Exception {
        ModelCatalog withoutDefault = ModelCatalog.fromConfig(ConfigFactory.parseString(
                "agentexec.agents.llm.base-url = \"\"").withFallback(ConfigFactory.load()));
        assertTrue(withoutDefault.names().contains(ModelCatalog.BUNDLED_REPLAY));
        AgentConfigException e = assertThrows(AgentConfigException.class, () -> withoutDefault.find("default"));
        assertTrue(e.getMessage().contains("AGENTEXEC_LLM_BASE_URL"), e.getMessage());
        ModelCatalog configured = ModelCatalog.fromConfig(ConfigFactory.parseString("""
                agentexec.agents.conversations.models.local { base-url = "http://127.0.0.1:11434/v1", model = "qwen" }
                """).withFallback(ConfigFactory.load()));
        assertEquals("qwen", configured.find("local").model());
        JsonNode unused = JSON.readTree("{}");
        assertTrue(unused.isEmpty());
    }
}
