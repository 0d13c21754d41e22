package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.github.dockerjava.api.DockerClient;
import io.agentexec.sandbox.docker.DockerBackend;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * Runs last (surefire's runOrder is alphabetical): closes the engines every other test used and
 * checks that nothing of theirs is left, neither a container in the daemon nor a bwrap cgroup.
 */
class ZzNoLeftoversTest {
    @Test
    void noContainerOrCgroupIsLeftAfterTheSuite() throws Exception {
        DockerClient docker = DockerBackend.client();
        String owner = ProcessHandle.current().pid() + "/";
        Backends.closeAll();
        List<String> ours = docker.listContainersCmd().withShowAll(true)
                .withLabelFilter(java.util.Map.of("io.agentexec.managed", "true")).exec().stream()
                .filter(c -> c.getLabels().getOrDefault("io.agentexec.owner", "").contains("/" + owner))
                .map(c -> c.getId().substring(0, 12) + " " + c.getLabels())
                .toList();
        assertEquals(List.of(), ours);
        for (String controller : List.of("memory", "pids", "cpu")) {
            Path groups = Path.of("/sys/fs/cgroup", controller, "agentexec");
            if (Files.isDirectory(groups)) {
                try (Stream<Path> left = Files.list(groups)) {
                    assertEquals(List.of(), left.filter(Files::isDirectory).toList());
                }
            }
        }
        docker.close();
    }
}
