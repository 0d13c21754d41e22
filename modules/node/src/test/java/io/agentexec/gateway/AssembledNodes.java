package io.agentexec.gateway;

import io.agentexec.node.Guardian;
import java.io.IOException;
import java.util.Map;

/**
 * The gateway's test nodes ({@link TestNode}) started through the node's composition root, the {@link Guardian}:
 * the agents run on them, so conversations do. For the gateway's tests that need the agents, which the gateway
 * module does not depend on.
 */
final class AssembledNodes {
    private AssembledNodes() {
    }

    static TestNode start(String backend, Map<String, Object> overrides) throws IOException {
        return TestNode.start(backend, overrides, (config, console) -> {
            Guardian.Node node = Guardian.start(config, console);
            return new TestNode.Composed(node.gateway(), node);
        });
    }
}
