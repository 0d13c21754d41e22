package io.agentexec.sandbox;

import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import org.junit.jupiter.api.Test;

class SmokeTest {
    @Test
    void smoke() {
        for (SandboxEngine e : new SandboxEngine[] {Backends.docker(), Backends.bwrap()}) {
            ExecutionResult r = e.execute(ExecutionRequest.of("python", "print('hi')\nimport os\nprint(os.getuid())", e.defaultLimits()));
            System.out.println(r);
            try (SandboxSession s = e.openSession("python", e.defaultLimits())) {
                for (int i = 0; i < 5; i++) {
                    long t = System.nanoTime();
                    ExecutionResult x = s.execute(ExecutionRequest.of("python", "print(1)", e.defaultLimits()));
                    System.out.println(e.backendName() + " " + (System.nanoTime() - t) / 1000 + "us " + x.verdict() + " " + x.stdout().strip() + x.stderr());
                }
            }
        }
    }
}
