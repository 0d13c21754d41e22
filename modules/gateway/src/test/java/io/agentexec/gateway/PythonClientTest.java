package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Runs clients/python's unittest suite with the machine's python3 against a node started here (the engine
 * backend), plus a single-node cluster whose sandboxes expire after a few idle seconds (the lost-workspace case).
 * AGENTEXEC_AG2_SOURCE, when set in this JVM's environment, is passed on: the suite then also runs the client
 * inside AG2's own UserProxyAgent (and says why it skips that otherwise).
 */
class PythonClientTest {
    /** A substring the node refuses (the seed's SecureCodeExecutor patterns), for the policy-verdict case. */
    static final String FORBIDDEN = "forbidden_marker_6c1d";

    @Test
    void pythonClientSuitePasses() throws Exception {
        Path clientDir = Path.of("../../clients/python").toAbsolutePath().normalize();
        assertEquals(true, Files.isDirectory(clientDir), clientDir.toString());
        try (TestNode node = TestNode.start("engine", Map.of(
                     "agentexec.sandbox.policy.forbidden-patterns", List.of(FORBIDDEN)));
             TestNode expiring = TestNode.start("cluster", Map.of(
                     "agentexec.cluster.persistence.url",
                     "jdbc:h2:mem:python-client-expiring;DB_CLOSE_DELAY=-1;DATABASE_TO_UPPER=false",
                     "pekko.remote.artery.canonical.port", 0,
                     "agentexec.cluster.sandbox.idle-timeout", "3s"))) {
            assertTrue(DockerProbe.eventually(() -> expiring.get("/readyz", null).status() == 200),
                    "the expiring cluster node gets ready");
            ProcessBuilder pb = new ProcessBuilder("python3", "-m", "unittest", "discover", "-s", "tests", "-t", ".", "-v")
                    .directory(clientDir.toFile()).redirectErrorStream(true);
            pb.environment().put("AGENTEXEC_URL", node.base);
            pb.environment().put("AGENTEXEC_API_KEY", TestNode.ALICE);
            pb.environment().put("AGENTEXEC_OTHER_API_KEY", TestNode.BOB);
            pb.environment().put("AGENTEXEC_EXPIRING_URL", expiring.base);
            pb.environment().put("AGENTEXEC_FORBIDDEN_PATTERN", FORBIDDEN);
            pb.environment().put("PYTHONDONTWRITEBYTECODE", "1");
            Process p = pb.start();
            String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor(10, TimeUnit.MINUTES);
            System.out.println(output);
            assertEquals(0, p.exitValue(), output);
            assertTrue(output.contains("OK"), output);
        }
    }
}
