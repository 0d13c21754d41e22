package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.agent.AgentRefusal;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import io.agentexec.sandbox.model.WorkspaceFile;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.function.LongFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * What every backend must do, run against the real Docker daemon and real bubblewrap: languages,
 * the seed's programs, and the hostile cases (timeouts with escaping children, fork and memory
 * bombs, output floods, network, environment leaks, path traversal).
 */
class EngineBehaviourTest {

    static Stream<BackendChoice> engines() {
        return Stream.of(BackendChoice.DOCKER, BackendChoice.BWRAP);
    }

    private static Limits limits(SandboxEngine engine) {
        return engine.defaultLimits().withTimeout(Duration.ofSeconds(20));
    }

    private static ExecutionResult run(SandboxEngine engine, String language, String code) {
        return engine.execute(ExecutionRequest.of(language, code, limits(engine)));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void helloWorldInEachLanguage(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        ExecutionResult py = run(engine, "python", "print('hello from python')");
        ExecutionResult sh = run(engine, "bash", "echo hello from bash");
        ExecutionResult js = run(engine, "javascript", "console.log('hello from javascript')");
        for (ExecutionResult r : List.of(py, sh, js)) {
            assertEquals(Verdict.OK, r.verdict(), r::toString);
            assertEquals(0, r.exitCode());
            assertEquals(engine.backendName(), r.backend());
        }
        assertEquals("hello from python\n", py.stdout());
        assertEquals("hello from bash\n", sh.stdout());
        assertEquals("hello from javascript\n", js.stdout());
        assertEquals("exitcode: 0 (execution succeeded)\nCode output: hello from python\n", py.ag2Reply());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aliasesSelectTheSameLanguage(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        assertEquals("3\n", run(engine, "py", "print(1 + 2)").stdout());
        assertEquals("sh\n", run(engine, "sh", "echo sh").stdout());
        assertEquals("node\n", run(engine, "js", "console.log('node')").stdout());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void theSeedsMedianFunctionWithEdgeCases(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        String code = """
                def median(numbers):
                    if not numbers:
                        raise ValueError("median of an empty list")
                    ordered = sorted(numbers)
                    n = len(ordered)
                    mid = n // 2
                    return ordered[mid] if n % 2 else (ordered[mid - 1] + ordered[mid]) / 2

                assert median([3, 1, 2]) == 2
                assert median([4, 1, 3, 2]) == 2.5
                assert median([7]) == 7
                try:
                    median([])
                except ValueError as e:
                    print("empty:", e)
                print(median([5, 3, 1, 4, 2]), median([1, 2, 3, 4]))
                """;
        ExecutionResult r = run(engine, "python", code);
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        assertEquals("empty: median of an empty list\n3 2.5\n", r.stdout());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void theSeedsBackupScriptInBash(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        String code = """
                # filename: backup.sh
                set -euo pipefail
                mkdir -p data backups
                touch -d '10 days ago' data/old1.log data/old2.log
                touch data/new.log
                archive="backups/backup-$(date +%Y%m%d).tar.gz"
                find data -type f -mtime +7 -print0 | tar --null -czf "$archive" --files-from=-
                echo "archived $(tar -tzf "$archive" | sort | tr '\\n' ' ')"
                """;
        ExecutionResult r = run(engine, "bash", code);
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        assertEquals("archived data/old1.log data/old2.log \n", r.stdout());
        assertTrue(r.filesWritten().stream().anyMatch(f -> f.path().startsWith("backups/backup-")), r::toString);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void nodeReadsJsonFromStdin(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        String code = """
                let input = '';
                process.stdin.on('data', chunk => input += chunk);
                process.stdin.on('end', () => {
                  const items = JSON.parse(input);
                  const total = items.reduce((sum, item) => sum + item.price * item.qty, 0);
                  console.log(JSON.stringify({ count: items.length, total }));
                });
                """;
        ExecutionResult r = engine.execute(ExecutionRequest.builder(limits(engine))
                .block("javascript", code)
                .stdin("[{\"price\": 2.5, \"qty\": 2}, {\"price\": 10, \"qty\": 1}]")
                .build());
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        assertEquals("{\"count\":2,\"total\":15}\n", r.stdout());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aFailingBlockStopsTheRequestWithAg2sReply(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        ExecutionResult r = engine.execute(ExecutionRequest.builder(limits(engine))
                .block("python", "def divide(a, b):\n    return a / b\nprint(divide(10, 0))")
                .block("python", "print('never runs')")
                .build());
        assertEquals(Verdict.RUNTIME_ERROR, r.verdict());
        assertEquals(1, r.exitCode());
        assertEquals(1, r.blocks().size());
        assertTrue(r.stderr().contains("ZeroDivisionError: division by zero"), r::toString);
        assertTrue(r.ag2Reply().startsWith("exitcode: 1 (execution failed)\nCode output: Traceback"), r::ag2Reply);
        assertFalse(r.output().contains("never runs"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void theWorkspacePersistsAcrossRequestsOfASession(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        try (SandboxSession session = engine.openSession("python", limits(engine))) {
            ExecutionResult first = session.execute(ExecutionRequest.builder(limits(engine))
                    .file(WorkspaceFile.text("input.txt", "41"))
                    .block("python", "# filename: step1.py\nopen('state.txt', 'w').write(str(int(open('input.txt').read()) + 1))")
                    .build());
            assertEquals(Verdict.OK, first.verdict(), first::toString);
            assertEquals(List.of("state.txt"), first.filesWritten().stream().map(f -> f.path()).toList());
            ExecutionResult second = session.execute(ExecutionRequest.of("bash", "cat state.txt; ls | grep -v tmp_code", limits(engine)));
            assertEquals("42input.txt\nstate.txt\nstep1.py\n", second.stdout());
            assertEquals("42", new String(session.readFile("state.txt", 1024), StandardCharsets.UTF_8));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void codeRunsAsAnUnprivilegedUserWithNoCapabilities(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        ExecutionResult r = run(engine, "bash", "id -u; grep -E '^Cap(Eff|Prm)' /proc/self/status; grep NoNewPrivs /proc/self/status || true");
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        assertTrue(r.stdout().startsWith("65534\n"), r::stdout);
        assertTrue(r.stdout().contains("CapPrm:\t0000000000000000"), r::stdout);
        assertTrue(r.stdout().contains("CapEff:\t0000000000000000"), r::stdout);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void timeoutKillsDetachedChildrenThatIgnoreSigterm(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        String marker = "agentexec-escapee-" + UUID.randomUUID();
        String code = """
                import os, sys, time
                if os.fork() == 0:
                    os.setsid()
                    if os.fork() == 0:
                        os.execvp("python3", ["python3", "-c",
                            "import signal, time\\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\\ntime.sleep(1000)", "%s"])
                    os._exit(0)
                print("before the timeout", flush=True)
                time.sleep(1000)
                """.formatted(marker);
        Limits limits = limits(engine).withTimeout(Duration.ofSeconds(2));
        try (SandboxSession session = engine.openSession("python", limits)) {
            long started = System.nanoTime();
            ExecutionResult r = session.execute(ExecutionRequest.of("python", code, limits));
            long elapsedMs = (System.nanoTime() - started) / 1_000_000;
            assertEquals(Verdict.TIMEOUT, r.verdict(), r::toString);
            assertEquals(124, r.exitCode());
            assertEquals("before the timeout\n", r.stdout(), "output printed before the timeout is kept");
            assertTrue(r.ag2Reply().endsWith("\nTimeout"), r::ag2Reply);
            assertTrue(elapsedMs < 2_000 + 2_000, "result within timeout + 2 s, took " + elapsedMs + " ms");
            assertEquals(List.of(), HostProcesses.withMarker(marker), "the detached child is dead");
            assertEquals("still usable\n", session.execute(ExecutionRequest.of("bash", "echo still usable", limits)).stdout());
        }
        assertEquals(List.of(), HostProcesses.withMarker(marker));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aCancelledRunEndsAtOnceAndTheSessionStaysUsable(BackendChoice backend) throws Exception {
        SandboxEngine engine = Backends.engine(backend);
        String marker = "agentexec-cancelled-" + UUID.randomUUID();
        try (SandboxSession session = engine.openSession("python", limits(engine))) {
            CompletableFuture<ExecutionResult> running = CompletableFuture.supplyAsync(() -> session.execute(
                    ExecutionRequest.of("bash", "echo started; bash -c 'sleep 1000; true' " + marker, limits(engine))));
            while (HostProcesses.withMarker(marker).isEmpty()) {
                Thread.sleep(20);
            }
            session.cancelRunning();
            ExecutionResult r = running.get();
            assertEquals(Verdict.CANCELLED, r.verdict(), r::toString);
            assertEquals("started\n", r.stdout());
            assertEquals(List.of(), HostProcesses.withMarker(marker));
            session.cancelRunning(); // nothing runs: a no-op that must not confuse the next request
            assertEquals("next\n", session.execute(ExecutionRequest.of("bash", "echo next", limits(engine))).stdout());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void backgroundProcessesDoNotOutliveTheirBlock(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        String marker = "agentexec-daemon-" + UUID.randomUUID();
        ExecutionResult r = run(engine, "bash",
                "(setsid bash -c 'sleep 1000; true' " + marker + " &)\nnohup bash -c 'sleep 1000; true' " + marker + " &\n"
                        + "sleep 0.5\nfor f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done | grep -c 'sleep 100[0]; true'");
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        assertTrue(r.stdout().startsWith("2"), () -> "both daemons ran: " + r);
        assertEquals(List.of(), HostProcesses.withMarker(marker));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void forkBombIsContainedWhileAnotherRunSucceeds(BackendChoice backend) throws Exception {
        SandboxEngine engine = Backends.engine(backend);
        Limits bombLimits = limits(engine).withTimeout(Duration.ofSeconds(4)).withPids(64);
        CompletableFuture<ExecutionResult> bomb = CompletableFuture.supplyAsync(() ->
                engine.execute(ExecutionRequest.of("bash", "bomb() { bomb | bomb & }; bomb; sleep 10", bombLimits)));
        Thread.sleep(1_000);
        ExecutionResult bystander = run(engine, "python", "print('unaffected')");
        assertEquals(Verdict.OK, bystander.verdict(), bystander::toString);
        assertEquals("unaffected\n", bystander.stdout());
        ExecutionResult r = bomb.get();
        assertNotEquals(Verdict.OK, r.verdict());
        assertNotEquals(Verdict.SANDBOX_ERROR, r.verdict(), r::toString);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void memoryBombGivesMemoryLimit(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        Limits small = limits(engine).withMemoryBytes(64L * 1024 * 1024);
        ExecutionResult r = engine.execute(ExecutionRequest.of("python",
                "print('allocating', flush=True)\nchunks = []\nwhile True:\n    chunks.append(b'x' * (16 * 1024 * 1024))", small));
        assertEquals(Verdict.MEMORY_LIMIT, r.verdict(), r::toString);
        assertEquals(137, r.exitCode());
        assertEquals(9, r.signal().orElse(0));
        assertEquals("allocating\n", r.stdout());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aProgramThatExits137ByItselfIsNotAMemoryLimit(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        ExecutionResult r = run(engine, "bash", "kill -9 $$");
        assertEquals(Verdict.RUNTIME_ERROR, r.verdict(), r::toString);
        assertEquals(137, r.exitCode());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void outputFloodIsCutAtExactlyTheCap(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        Limits capped = limits(engine).withOutputBytesPerStream(65_536);
        ExecutionResult r = engine.execute(ExecutionRequest.of("bash", "echo to stderr >&2; yes", capped));
        assertEquals(Verdict.OUTPUT_LIMIT, r.verdict(), r::toString);
        assertEquals(65_536, r.stdoutBytes());
        assertEquals(65_536, r.stdout().length());
        assertTrue(r.stdoutTruncated());
        assertFalse(r.stderrTruncated());
        assertEquals("to stderr\n", r.stderr());
        assertTrue(r.stdout().startsWith("y\ny\n"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void outputExactlyAtTheCapIsNotTruncated(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        Limits capped = limits(engine).withOutputBytesPerStream(10);
        ExecutionResult r = engine.execute(ExecutionRequest.of("bash", "printf 0123456789", capped));
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        assertEquals("0123456789", r.stdout());
        assertFalse(r.stdoutTruncated());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void theSandboxHasNoNetwork(BackendChoice backend) throws IOException {
        SandboxEngine engine = Backends.engine(backend);
        try (ServerSocket hostService = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            String code = """
                    import socket
                    interfaces = [line.split(':')[0].strip() for line in open('/proc/net/dev').readlines()[2:]]
                    routes = open('/proc/net/route').readlines()[1:]
                    print('interfaces', interfaces)
                    print('routes', len(routes))
                    s = socket.socket()
                    s.settimeout(2)
                    try:
                        s.connect(('127.0.0.1', %d))
                        print('reached the host')
                    except OSError as e:
                        print('host loopback unreachable:', type(e).__name__)
                    """.formatted(hostService.getLocalPort());
            ExecutionResult r = run(engine, "python", code);
            assertEquals(Verdict.OK, r.verdict(), r::toString);
            assertTrue(r.stdout().contains("interfaces ['lo']\n"), r::stdout);
            assertTrue(r.stdout().contains("routes 0\n"), r::stdout);
            assertTrue(r.stdout().contains("host loopback unreachable"), r::stdout);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void theHostsEnvironmentDoesNotLeakIn(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        assertEquals("leak-canary", System.getenv("AGENTEXEC_TEST_SECRET"), "surefire sets this for the JVM");
        ExecutionResult r = engine.execute(ExecutionRequest.builder(limits(engine))
                .block("bash", "env | sort")
                .env("GREETING", "explicitly passed")
                .build());
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        assertFalse(r.stdout().contains("leak-canary"), r::stdout);
        assertFalse(r.stdout().contains("AGENTEXEC_TEST_SECRET"), r::stdout);
        assertTrue(r.stdout().contains("GREETING=explicitly passed\n"), r::stdout);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void fileNamesThatLeaveTheWorkspaceAreRefused(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        for (String name : List.of("../escape.py", "/etc/escape.py", "a/../../escape.py", "./x/../y.py")) {
            ExecutionResult r = run(engine, "python", "# filename: " + name + "\nprint('ran')");
            assertEquals(Verdict.POLICY_VIOLATION, r.verdict(), name);
            assertFalse(r.output().contains("ran"));
            assertTrue(r.message().contains(name) || r.message().contains("absolute"), r::message);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aSymlinkInTheWorkspaceCannotRedirectAWrite(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        try (SandboxSession session = engine.openSession("python", limits(engine))) {
            session.execute(ExecutionRequest.of("bash", "ln -s /tmp/outside.py link.py", limits(engine)));
            ExecutionResult r = session.execute(ExecutionRequest.of("python", "# filename: link.py\nprint('ran')", limits(engine)));
            assertEquals(Verdict.POLICY_VIOLATION, r.verdict(), r::toString);
            assertTrue(r.message().contains("symlink"), r::message);
            ExecutionResult check = session.execute(ExecutionRequest.of("bash", "test -e /tmp/outside.py && echo written || echo absent", limits(engine)));
            assertEquals("absent\n", check.stdout());
        }
    }

    /**
     * A block's file and its run reach the agent together (one round trip): a refused write must refuse the run that
     * came with it, or the block would run whatever the path already held (here a planted program behind a symlink).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aBlockWhoseFileIsRefusedNeverRunsWhatThePathAlreadyHeld(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        try (SandboxSession session = engine.openSession("python", limits(engine))) {
            ExecutionResult planted = session.execute(ExecutionRequest.of("bash",
                    "printf 'open(\"/tmp/planted-ran\", \"w\").write(\"x\")\\n' > /tmp/planted.py"
                            + " && ln -s /tmp/planted.py link.py && echo planted", limits(engine)));
            assertEquals("planted\n", planted.stdout(), planted::toString);
            ExecutionResult r = session.execute(ExecutionRequest.of("python", "# filename: link.py\nprint('mine')", limits(engine)));
            assertEquals(Verdict.POLICY_VIOLATION, r.verdict(), r::toString);
            assertTrue(r.message().contains("symlink"), r::message);
            // The session reads its next answers in order: the refused run's answer was taken with the write's.
            ExecutionResult check = session.execute(ExecutionRequest.of("bash",
                    "test -e /tmp/planted-ran && echo ran || echo not-run", limits(engine)));
            assertEquals("not-run\n", check.stdout(), check::toString);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void unknownLanguageGivesAg2sMessage(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        ExecutionResult r = run(engine, "cobol", "DISPLAY 'HI'.");
        assertEquals(1, r.exitCode());
        assertEquals("unknown language cobol", r.output());
        assertEquals("exitcode: 1 (execution failed)\nCode output: unknown language cobol", r.ag2Reply());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void invalidUtf8OutputBecomesReplacementCharacters(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        ExecutionResult r = run(engine, "python", "import sys\nsys.stdout.buffer.write(b'\\xff\\xfe ok\\n')");
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        assertEquals("\uFFFD\uFFFD ok\n", r.stdout());
        assertEquals(6, r.stdoutBytes());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aMissingInterpreterIsExplained(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        try (SandboxSession session = engine.openSession("python", limits(engine))) {
            ExecutionRequest request = ExecutionRequest.of("bash", "exec /nonexistent/interpreter", limits(engine));
            ExecutionResult r = session.execute(request);
            assertEquals(Verdict.RUNTIME_ERROR, r.verdict());
            assertEquals(127, r.exitCode());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void stdinReachesEveryBlock(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        ExecutionResult r = engine.execute(ExecutionRequest.builder(limits(engine))
                .block("python", "import sys\nprint(sys.stdin.read().upper())")
                .block("bash", "wc -c")
                .stdin("abc")
                .build());
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        assertEquals("ABC\n3\n", r.stdout());
        assertEquals(2, r.blocks().size());
        assertTrue(Arrays.asList("python", "bash").containsAll(r.blocks().stream().map(b -> b.language()).toList()));
    }
    // ---------- hostile code against the agent and the sandbox's walls (security review) ----------

    /**
     * Python that writes {@code payloadExpression} (frames of the agent protocol) into every /proc/PID/fd/N of other
     * processes it can open, stdin last, then exits 3.
     */
    private static String intoEveryForeignFd(String payloadExpression, String label) {
        return """
                import os, struct, sys
                def frame(kind, payload):
                    return kind + struct.pack('>I', len(payload)) + payload
                payload = %s
                me = os.getpid()
                reached = 0
                for pid in sorted(p for p in os.listdir('/proc') if p.isdigit() and int(p) != me):
                    try:
                        fds = sorted(os.listdir('/proc/%%s/fd' %% pid), key=lambda fd: (fd == '0', int(fd)))
                    except OSError:
                        continue
                    for fd in fds:
                        try:
                            f = os.open('/proc/%%s/fd/%%s' %% (pid, fd), os.O_WRONLY | os.O_NONBLOCK)
                        except OSError:
                            continue
                        try:
                            os.set_blocking(f, True)
                            os.write(f, payload)
                            reached += 1
                        except OSError:
                            pass
                        finally:
                            os.close(f)
                print('%s', reached, flush=True)
                sys.exit(3)
                """.formatted(payloadExpression, label);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void userCodeCannotForgeItsResultThroughProcFds(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        String forged = "frame(b'o', b'FORGED OUTPUT\\n') + frame(b'x', struct.pack('>IIIQQI', 0, 0, 0, 1000, 0, 0))";
        ExecutionResult r = run(engine, "python", intoEveryForeignFd(forged, "forged into"));
        assertEquals(Verdict.RUNTIME_ERROR, r.verdict(), r::toString);
        assertEquals(3, r.exitCode(), r::toString);
        assertFalse(r.output().contains("FORGED"), r::toString);
        assertEquals("forged into 0\n", r.stdout(), "no fd of another process is writable from inside");
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aFloodThroughProcFdsDoesNotPassTheCap(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        Limits limits = limits(engine).withOutputBytesPerStream(1024 * 1024);
        String flood = "frame(b'o', b'F' * 65536) * 80";
        ExecutionResult r = engine.execute(ExecutionRequest.of("python", intoEveryForeignFd(flood, "flooded"), limits));
        assertTrue(r.stdoutBytes() <= limits.outputBytesPerStream(), () -> "recorded " + r.stdoutBytes() + " bytes");
        assertFalse(r.stdout().contains("FFFF"), () -> r.stdout().substring(0, Math.min(200, r.stdout().length())));
        assertEquals(Verdict.RUNTIME_ERROR, r.verdict(), r::message);
        assertEquals(3, r.exitCode());
        assertEquals("flooded 0\n", r.stdout());
    }

    /**
     * Runs {@code exec -a MARKER sleep} in the session, hands the host pid of that process (the run's main process,
     * a direct child of the agent) to {@code check} while it lives, then cancels the run.
     */
    private static <T> T whileARunIsLive(SandboxSession session, Limits limits, LongFunction<T> check) throws Exception {
        String marker = "agentexec-live-" + UUID.randomUUID();
        CompletableFuture<ExecutionResult> running = CompletableFuture.supplyAsync(() ->
                session.execute(ExecutionRequest.of("bash", "exec -a " + marker + " sleep 600", limits)));
        long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
        List<Long> pids;
        while ((pids = HostProcesses.withMarker(marker)).isEmpty()) {
            if (running.isDone() || System.nanoTime() > deadline) {
                fail("the run's process never showed in the host's process table: " + (running.isDone() ? running.get() : "still waiting"));
            }
            Thread.sleep(20);
        }
        try {
            return check.apply(pids.get(0));
        } finally {
            session.cancelRunning();
            running.get();
        }
    }

    private static String procStatus(long pid, String field) {
        try {
            return Files.readAllLines(Path.of("/proc", Long.toString(pid), "status")).stream()
                    .filter(l -> l.startsWith(field + ":")).findFirst().orElseThrow()
                    .substring(field.length() + 1).trim();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static long agentHostPid(SandboxSession session, Limits limits) throws Exception {
        return whileARunIsLive(session, limits, pid -> Long.parseLong(procStatus(pid, "PPid")));
    }

    private static long openFds(long pid) {
        try (Stream<Path> fds = Files.list(Path.of("/proc", Long.toString(pid), "fd"))) {
            return fds.count();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void userCodeRunsAsAnUnprivilegedHostUser(BackendChoice backend) throws Exception {
        SandboxEngine engine = Backends.engine(backend);
        try (SandboxSession session = engine.openSession("python", limits(engine))) {
            // Seen from the host (this JVM), so that a user namespace's own view cannot hide a mapping to root.
            String[] seen = whileARunIsLive(session, limits(engine), pid -> {
                try {
                    return new String[] {procStatus(pid, "Uid"), procStatus(pid, "Gid"),
                            Files.readString(Path.of("/proc", Long.toString(pid), "uid_map")).trim()};
                } catch (IOException e) {
                    throw new IllegalStateException(e);
                }
            });
            for (String ids : List.of(seen[0], seen[1])) {
                for (String id : ids.split("\\s+")) {
                    assertNotEquals("0", id, () -> "host uid/gid of sandboxed code: Uid " + seen[0] + ", Gid " + seen[1]
                            + ", uid_map " + seen[2]);
                }
            }
            String[] map = seen[2].split("\\s+");
            assertTrue(!map[1].equals("0") || map[0].equals("0") && map[2].equals("4294967295"),
                    () -> "a user namespace maps the sandbox to host uid 0: " + seen[2]);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void nestedUserNamespacesAreRefused(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        ExecutionResult r = run(engine, "bash", "if unshare -U true; then echo nested userns allowed; else echo refused; fi");
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        assertEquals("refused\n", r.stdout(), r::toString);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void seccompRefusesDangerousSyscalls(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        String code = """
                import ctypes, errno, threading
                libc = ctypes.CDLL(None, use_errno=True)
                libc.syscall.restype = ctypes.c_long
                def call(name, nr, *args):
                    ctypes.set_errno(0)
                    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) if isinstance(a, int) else a for a in args])
                    e = ctypes.get_errno()
                    print(name, 'ok' if r >= 0 else errno.errorcode.get(e, str(e)))
                call('unshare', 272, 0)
                call('keyctl', 250, 0, -3, 0)
                call('add_key', 248, b'user', b'agentexec', b'secret', 6, -3)
                call('mount', 165, b'none', b'/tmp', b'tmpfs', 0, 0)
                call('personality', 135, 0x0400000)
                t = threading.Thread(target=lambda: print('threads work'))
                t.start()
                t.join()
                """;
        ExecutionResult r = run(engine, "python", code);
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        assertEquals("unshare EPERM\nkeyctl EPERM\nadd_key EPERM\nmount EPERM\npersonality EPERM\nthreads work\n",
                r.stdout(), r::toString);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void theRootFilesystemIsReadOnly(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        ExecutionResult r = run(engine, "bash", """
                for p in /etc/x /x /usr/x /dev/x /tmp/x /dev/shm/x ./x; do
                  if touch "$p" 2>/dev/null; then echo "$p writable"; else echo "$p refused"; fi
                done
                """);
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        assertEquals("/etc/x refused\n/x refused\n/usr/x refused\n/dev/x refused\n/tmp/x writable\n/dev/shm/x writable\n"
                + "./x writable\n", r.stdout());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aBusyLoopIsHeldToItsCpuQuota(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        // A quota of 2 ms per 100 ms period: any period in which the loop gets more CPU than that is throttled, however
        // busy the machine is; the loop runs until it has used 50 ms of CPU (at least 25 periods), whatever that takes.
        Limits limits = limits(engine).withCpus(0.02).withTimeout(Duration.ofSeconds(90));
        ExecutionResult r = engine.execute(ExecutionRequest.of("python", """
                import time
                end = time.time() + 40
                while time.process_time() < 0.05 and time.time() < end:
                    pass
                for path in ('/sys/fs/cgroup/cpu/cpu.stat', '/sys/fs/cgroup/cpu.stat'):
                    try:
                        print(open(path).read())
                        break
                    except OSError:
                        pass
                else:
                    print('no cpu.stat')
                """, limits));
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        Matcher throttled = Pattern.compile("(?m)^nr_throttled (\\d+)$").matcher(r.stdout());
        assertTrue(throttled.find(), r::stdout);
        assertTrue(Long.parseLong(throttled.group(1)) > 0, r::stdout);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aFifoInTheWorkspaceDoesNotStallFileOperations(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        try (SandboxSession session = engine.openSession("python", limits(engine))) {
            ExecutionResult made = session.execute(ExecutionRequest.of("bash", "mkfifo pipe && echo made", limits(engine)));
            assertEquals("made\n", made.stdout(), made::toString);
            AgentRefusal get = assertThrows(AgentRefusal.class, () -> session.readFile("pipe", 1024));
            assertTrue(get.getMessage().contains("pipe"), get::getMessage);
            AgentRefusal put = assertThrows(AgentRefusal.class,
                    () -> session.writeFile("pipe", "x".getBytes(StandardCharsets.UTF_8)));
            assertTrue(put.getMessage().contains("pipe"), put::getMessage);
            assertTrue(session.isUsable());
            ExecutionResult after = session.execute(ExecutionRequest.of("bash", "test -p pipe && echo still a fifo", limits(engine)));
            assertEquals("still a fifo\n", after.stdout(), after::toString);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void directoriesDeeperThanTheWalkLimitDoNotLeakAgentFds(BackendChoice backend) throws Exception {
        SandboxEngine engine = Backends.engine(backend);
        try (SandboxSession session = engine.openSession("python", limits(engine))) {
            ExecutionResult deep = session.execute(ExecutionRequest.of("bash",
                    "for i in $(seq 300); do mkdir -p d$i/$(seq -s / 20); done; echo made", limits(engine)));
            assertEquals("made\n", deep.stdout(), deep::toString);
            long agent = agentHostPid(session, limits(engine));
            long before = openFds(agent);
            for (int i = 0; i < 10; i++) {
                ExecutionResult r = session.execute(ExecutionRequest.of("bash", "echo run " + i + " | tee out.txt", limits(engine)));
                assertEquals(Verdict.OK, r.verdict(), r::toString);
                assertEquals("run " + i + "\n", r.stdout());
                assertEquals(List.of("out.txt"), r.filesWritten().stream().map(f -> f.path()).toList(), r::toString);
            }
            assertEquals(before, openFds(agent), "the agent's open fds after 10 runs over 300 deep directories");
        }
    }
}
