package io.agentexec.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class CodeExecutionConfigTest {

    @Test
    void readsEveryKeyOfTheSeedsAdvancedExecutor() {
        CodeExecutionConfig c = CodeExecutionConfig.fromMap(Map.of(
                "work_dir", "coding_workspace",
                "use_docker", true,
                "timeout", 120,
                "last_n_messages", 5,
                "docker_image", "python:3.9-slim",
                "docker_container_name", "ag2_code_executor",
                "docker_run_args", List.of("--rm", "--network", "none")));
        assertEquals("coding_workspace", c.workDir());
        assertEquals(Isolation.DOCKER, c.isolation());
        assertEquals(Optional.of(Duration.ofSeconds(120)), c.timeout());
        assertEquals(LastNMessages.of(5), c.lastNMessages());
        assertEquals(Optional.of("python:3.9-slim"), c.image());
        assertEquals(Optional.of("ag2_code_executor"), c.containerName());
        assertEquals(List.of("--rm", "--network", "none"), c.dockerRunArgs());
    }

    @Test
    void readsTheSeedsSecureRunArgs() {
        CodeExecutionConfig c = CodeExecutionConfig.fromMap(Map.of("use_docker", true, "docker_image", "python:3.9-slim",
                "docker_run_args", List.of("--rm", "--network", "none", "--read-only", "--tmpfs", "/tmp", "--memory", "512m",
                        "--cpus", "0.5", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true"), "timeout", 30));
        assertEquals(14, c.dockerRunArgs().size());
    }

    @Test
    void useDockerTakesAnImageNameOrFalseForBubblewrap() {
        assertEquals(Optional.of("node:18-slim"), CodeExecutionConfig.fromMap(Map.of("use_docker", "node:18-slim")).image());
        assertEquals(Isolation.BWRAP, CodeExecutionConfig.fromMap(Map.of("use_docker", false)).isolation());
        assertEquals(Isolation.DOCKER, CodeExecutionConfig.fromMap(Map.of()).isolation());
        assertEquals(LastNMessages.auto(), CodeExecutionConfig.fromMap(Map.of()).lastNMessages());
        assertEquals(LastNMessages.auto(), CodeExecutionConfig.fromMap(Map.of("last_n_messages", "auto")).lastNMessages());
    }

    @Test
    void errorsNameTheirKey() {
        assertError(Map.of("timeout", 0), "timeout");
        assertError(Map.of("timeout", -5), "timeout");
        assertError(Map.of("timeout", 1.5), "timeout");
        assertError(Map.of("timeout", "60"), "timeout");
        assertError(Map.of("last_n_messages", -1), "last_n_messages");
        assertError(Map.of("last_n_messages", 2.5), "last_n_messages");
        assertError(Map.of("last_n_messages", "all"), "last_n_messages");
        assertError(Map.of("use_dokcer", true), "unknown key 'use_dokcer'");
        assertError(Map.of("use_docker", 3), "use_docker");
        assertError(Map.of("work_dir", "../etc"), "work_dir");
        assertError(Map.of("docker_container_name", "bad name!"), "docker_container_name");
        assertError(Map.of("docker_run_args", "--rm"), "docker_run_args");
        Map<String, Object> nullTimeout = new HashMap<>();
        nullTimeout.put("timeout", null);
        assertError(nullTimeout, "timeout");
    }

    @Test
    void runArgsThatWeakenIsolationAreRefusedNamingTheFlag() {
        assertError(Map.of("docker_run_args", List.of("--privileged")), "--privileged");
        assertError(Map.of("docker_run_args", List.of("--network", "host")), "--network host");
        assertError(Map.of("docker_run_args", List.of("-v", "/:/host")), "-v");
        assertError(Map.of("docker_run_args", List.of("--cap-add", "SYS_ADMIN")), "--cap-add");
        assertError(Map.of("docker_run_args", List.of("--user", "root")), "--user");
    }

    private static void assertError(Map<String, ?> map, String expected) {
        AgentConfigException e = assertThrows(AgentConfigException.class, () -> CodeExecutionConfig.fromMap(map));
        assertTrue(e.getMessage().contains(expected), () -> "'" + e.getMessage() + "' should mention " + expected);
        assertTrue(e.getMessage().startsWith("code_execution_config"), e::getMessage);
    }
}
