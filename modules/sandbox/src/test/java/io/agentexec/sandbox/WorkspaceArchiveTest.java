package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A workspace packed in one sandbox and unpacked in another (how the cluster moves a sandbox off a draining worker):
 * files, directories, modes and binary content arrive; the new sandbox runs on; an archive over its cap is refused.
 */
class WorkspaceArchiveTest {
    private static final Duration TIMEOUT = Duration.ofSeconds(60);

    static Stream<BackendChoice> engines() {
        return Stream.of(BackendChoice.DOCKER, BackendChoice.BWRAP);
    }

    private static ExecutionResult run(SandboxSession session, String code, Limits limits) {
        ExecutionResult r = session.execute(ExecutionRequest.of("python", code, limits));
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        return r;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aWorkspacePackedInOneSandboxUnpacksInAnotherThatRunsOn(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        Limits limits = engine.defaultLimits().withTimeout(TIMEOUT);
        byte[] archive;
        try (SandboxSession old = engine.openSession("python", limits)) {
            run(old, """
                    import os
                    os.makedirs('d/e', exist_ok=True)
                    open('d/e/f.txt', 'w').write('deep')
                    open('run.sh', 'w').write('echo hi')
                    os.chmod('run.sh', 0o755)
                    open('secret', 'w').write('mine')
                    os.chmod('secret', 0o600)
                    open('bin', 'wb').write(bytes(range(256)) * 4)
                    """, limits);
            archive = old.exportWorkspace(limits, limits.workspaceBytes(), TIMEOUT);
            assertTrue(old.isUsable(), "packing leaves the sandbox as it was");
        }
        try (SandboxSession fresh = engine.openSession("python", limits)) {
            fresh.importWorkspace(archive, limits, TIMEOUT);
            assertTrue(fresh.isUsable(), "unpacking leaves the sandbox usable");
            ExecutionResult r = run(fresh, """
                    import os, stat
                    print(open('d/e/f.txt').read(), os.access('run.sh', os.X_OK),
                          oct(stat.S_IMODE(os.stat('secret').st_mode)), open('bin', 'rb').read() == bytes(range(256)) * 4)
                    """, limits);
            assertEquals("deep True 0o600 True\n", r.stdout(), r::toString);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void anArchiveLargerThanItsCapIsRefusedAndTheSandboxStaysUsable(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        Limits limits = engine.defaultLimits().withTimeout(TIMEOUT);
        try (SandboxSession session = engine.openSession("python", limits)) {
            run(session, "open('big', 'wb').write(b'x' * 300000)", limits);
            SandboxSession.WorkspaceArchiveException e = assertThrows(SandboxSession.WorkspaceArchiveException.class,
                    () -> session.exportWorkspace(limits, 100_000, TIMEOUT));
            assertTrue(e.getMessage().contains("larger than 100000 bytes"), e.getMessage());
            assertTrue(session.isUsable());
            run(session, "print(len(open('big', 'rb').read()))", limits);
        }
    }
}
