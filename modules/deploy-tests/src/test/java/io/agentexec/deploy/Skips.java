package io.agentexec.deploy;

import org.junit.jupiter.api.Assumptions;

/** A skip whose reason is printed to the build's output, not only written to the test report. */
final class Skips {
    private Skips() {
    }

    static void assumeTrue(boolean condition, String reason) {
        if (!condition) {
            System.out.println("[deploy-tests] " + reason);
        }
        Assumptions.assumeTrue(condition, reason);
    }
}
