package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/** Runs clients/python's unittest suite with the machine's python3 against a node started here. */
class PythonClientTest {
    @Test
    void pythonClientSuitePasses() throws Exception {
        Path clientDir = Path.of("../../clients/python").toAbsolutePath().normalize();
        assertEquals(true, Files.isDirectory(clientDir), clientDir.toString());
        try (TestNode node = TestNode.start("engine", Map.of())) {
            ProcessBuilder pb = new ProcessBuilder("python3", "-m", "unittest", "discover", "-s", "tests", "-t", ".", "-v")
                    .directory(clientDir.toFile()).redirectErrorStream(true);
            pb.environment().put("AGENTEXEC_URL", node.base);
            pb.environment().put("AGENTEXEC_API_KEY", TestNode.ALICE);
            pb.environment().put("AGENTEXEC_OTHER_API_KEY", TestNode.BOB);
            pb.environment().put("PYTHONDONTWRITEBYTECODE", "1");
            Process p = pb.start();
            String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            p.waitFor(5, TimeUnit.MINUTES);
            System.out.println(output);
            assertEquals(0, p.exitValue(), output);
        }
    }
}
