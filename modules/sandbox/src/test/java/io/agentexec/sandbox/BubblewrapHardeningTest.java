package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What only the bubblewrap backend does itself (Docker brings its own seccomp profile): the agent's seccomp filter,
 * seen from a static C program that makes the calls Python cannot (int 0x80, x32, clone3). The shared hostile cases
 * (forged frames, uid mapping, nested user namespaces, read-only root, CPU quota...) are in EngineBehaviourTest, on
 * both backends.
 */
class BubblewrapHardeningTest {

    /** Compiles src/test/resources/c/abi-probe.c statically: it runs in the sandbox without any library. */
    private static byte[] abiProbe(Path dir) throws Exception {
        Path source = dir.resolve("abi-probe.c");
        try (InputStream in = BubblewrapHardeningTest.class.getResourceAsStream("/c/abi-probe.c")) {
            Files.write(source, in.readAllBytes());
        }
        Path binary = dir.resolve("abi-probe");
        Process gcc = new ProcessBuilder("gcc", "-static", "-O2", "-o", binary.toString(), source.toString())
                .redirectErrorStream(true).start();
        String out = new String(gcc.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(gcc.waitFor(120, TimeUnit.SECONDS) && gcc.exitValue() == 0, "gcc: " + out);
        return Files.readAllBytes(binary);
    }

    /** The probe's output run straight on the host, outside any sandbox. */
    private static String onTheHost(Path binary) throws Exception {
        Process p = new ProcessBuilder(binary.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the probe on the host did not end: " + out);
        return out;
    }

    @Test
    void theSeccompFilterCoversOtherAbisAndTheCallsItCannotInspect(@TempDir Path dir) throws Exception {
        SandboxEngine engine = Backends.bwrap();
        Limits limits = engine.defaultLimits().withTimeout(Duration.ofSeconds(20));
        byte[] probe = abiProbe(dir);
        // A kernel without a usable i386 entry kills an int 0x80 caller with SIGSEGV, in a sandbox or not: there is then
        // no i386 call for the filter to refuse, and the sandbox must say SIGSEGV as the host does.
        String hostI386 = onTheHost(dir.resolve("abi-probe")).lines().findFirst().orElse("");
        String i386 = hostI386.equals("i386 SIGSEGV") ? hostI386 : "i386 EPERM";
        if (hostI386.equals("i386 SIGSEGV")) {
            System.out.println("BubblewrapHardeningTest: this kernel has no usable i386 entry (int 0x80 is SIGSEGV on "
                    + "the host too); the i386 line checks that, not the filter");
        }
        try (SandboxSession session = engine.openSession("python", limits)) {
            session.writeFile("abi-probe", probe);
            ExecutionResult r = session.execute(ExecutionRequest.of("bash", "chmod +x abi-probe && ./abi-probe", limits));
            assertEquals(Verdict.OK, r.verdict(), r::toString);
            assertEquals(i386 + """

                    x32 EPERM
                    clone3 ENOSYS
                    io_uring_setup EPERM
                    vsock EPERM
                    personality query ok
                    clone newuser EPERM
                    """, r.stdout(), r::toString);
        }
    }
}
