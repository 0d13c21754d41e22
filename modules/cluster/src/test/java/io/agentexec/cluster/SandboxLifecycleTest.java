package io.agentexec.cluster;

import static io.agentexec.cluster.TestNodes.await;
import static io.agentexec.cluster.TestNodes.completed;
import static io.agentexec.cluster.TestNodes.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.nio.file.Files;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** The idle timeout: it removes the container and passivates; the next request gets a fresh, announced workspace. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SandboxLifecycleTest {
    private AgentexecCluster node;
    private Limits limits;

    @BeforeAll
    void start() throws Exception {
        node = TestNodes.start(TestNodes.common(TestNodes.freePort(), List.of(), "gateway,worker")
                + TestNodes.h2(Files.createTempDirectory("agentexec-idle"))
                + "agentexec.cluster.sandbox.idle-timeout = 3s\n");
        limits = node.engine().orElseThrow().defaultLimits().withTimeout(Duration.ofSeconds(20));
        TestNodes.awaitWorkers(node, 1);
    }

    @AfterAll
    void stop() {
        if (node != null) {
            node.close();
        }
    }

    @Test
    void idleSandboxExpiresItsContainerIsRemovedAndTheNextRunSaysTheWorkspaceWasLost() {
        String id = await(node.createSandbox("python", limits)).sandboxId();
        completed(run(node, Optional.of(id), "open('kept.txt', 'w').write('x')", limits));
        assertEquals(1, TestNodes.sessionsOn(node));

        TestNodes.eventually("the sandbox expires", () -> await(node.sandbox(id)).status() == SandboxView.Status.EXPIRED);
        TestNodes.eventually("its container is removed", () -> TestNodes.sessionsOn(node) == 0);
        SandboxView expired = await(node.sandbox(id));
        assertTrue(expired.worker().isEmpty());
        assertTrue(expired.workspaceLostReason().orElse("").contains("expired"));

        ExecutionOutcome.Completed next = completed(run(node, Optional.of(id), "print(open('kept.txt').read())", limits));
        assertEquals(Verdict.RUNTIME_ERROR, next.result().verdict(), "the file went with the old container");
        assertTrue(next.workspaceLost().orElse("").contains("expired"), "the reply says the workspace was lost");
        SandboxView again = await(node.sandbox(id));
        assertEquals(SandboxView.Status.ACTIVE, again.status());
        assertTrue(again.workspaceLostReason().isEmpty(), "announced once");
        assertEquals(2, again.executions());
    }
}
