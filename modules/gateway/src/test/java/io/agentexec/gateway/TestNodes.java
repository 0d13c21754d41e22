package io.agentexec.gateway;

import java.util.Map;

/** Starts test nodes for tests in other packages. */
public final class TestNodes {
    private TestNodes() {
    }

    public record Started(AutoCloseable node, String base) { }

    public static Started engineNode() throws Exception {
        TestNode node = TestNode.start("engine", Map.of());
        return new Started(node, node.base);
    }

    public static String aliceKey() {
        return TestNode.ALICE;
    }
}
