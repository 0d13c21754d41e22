package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.language.Language;
import io.agentexec.sandbox.language.LanguageTable;
import io.agentexec.sandbox.language.Zygote;
import io.agentexec.sandbox.model.BlockOutcome;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A block's code runs as the same uid as the zygote it was forked from, so it is hostile to it: it finds the zygote
 * (its command line is readable), and tries to trace it, read it, open its fds, signal it, stop it, change its limits
 * or scheduling, plant start-up files, or leave processes behind. None of it may reach a later block: the zygote
 * cannot be traced or read, and one that was touched is replaced, that block getting a plain start. Both backends.
 */
class ZygoteIsolationTest {

    static Stream<BackendChoice> engines() {
        return Stream.of(BackendChoice.DOCKER, BackendChoice.BWRAP);
    }

    /** Python that finds the zygote: the other process with the zygote's command line (the block's own has it too). */
    private static final String FIND_ZYGOTE = """
            import os, sys, ctypes
            def zygote():
                for p in os.listdir('/proc'):
                    if p.isdigit() and int(p) != os.getpid():
                        try:
                            if b'_agentexec_run' in open('/proc/%s/cmdline' % p, 'rb').read():
                                return int(p)
                        except OSError:
                            pass
                sys.exit('no zygote found')
            z = zygote()
            """;

    private static Limits limits(SandboxEngine engine) {
        return engine.defaultLimits().withTimeout(Duration.ofSeconds(60));
    }

    private static ExecutionResult run(SandboxSession s, SandboxEngine engine, String code) {
        ExecutionResult r = s.execute(ExecutionRequest.of("python", code, limits(engine)));
        assertTrue(r.verdict() == Verdict.OK, r::toString);
        return r;
    }

    private static String start(ExecutionResult r) {
        return r.blocks().get(0).start();
    }

    /** What a block can see of the limits and scheduling it inherits: a plain start's, whatever an earlier block did. */
    private static final String INHERITED = """
            import os, resource
            print({n: resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith('RLIMIT_')},
                  os.getpriority(os.PRIO_PROCESS, 0), sorted(os.sched_getaffinity(0)), os.sched_getscheduler(0))
            """;

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void theZygoteCannotBeTracedReadOrOpened(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        try (SandboxSession s = engine.openSession("python", limits(engine))) {
            run(s, engine, "pass");
            ExecutionResult r = run(s, engine, FIND_ZYGOTE + """
                    libc = ctypes.CDLL(None, use_errno=True)
                    def errno_of(f):
                        ctypes.set_errno(0)
                        rc = f()
                        return 'ok' if rc >= 0 else os.strerror(ctypes.get_errno())
                    print('ptrace attach:', errno_of(lambda: libc.ptrace(16, z, 0, 0)))
                    print('ptrace seize:', errno_of(lambda: libc.ptrace(0x4206, z, 0, 0)))
                    buf = ctypes.create_string_buffer(8)
                    class iovec(ctypes.Structure):
                        _fields_ = [('base', ctypes.c_void_p), ('len', ctypes.c_size_t)]
                    local = iovec(ctypes.cast(buf, ctypes.c_void_p), 8)
                    remote = iovec(0x400000, 8)
                    print('process_vm_readv:', errno_of(lambda: libc.process_vm_readv(z, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)))
                    for what in ('mem', 'environ', 'fd/3', 'fd/0', 'maps', 'auxv'):
                        try:
                            open('/proc/%d/%s' % (z, what), 'rb').read(1)
                            print(what, 'read')
                        except OSError as e:
                            print(what, type(e).__name__)
                    try:
                        os.listdir('/proc/%d/fd' % z)
                        print('fd listed')
                    except OSError as e:
                        print('fd', type(e).__name__)
                    """);
            assertEquals(BlockOutcome.ZYGOTE, start(r));
            assertEquals("""
                    ptrace attach: Operation not permitted
                    ptrace seize: Operation not permitted
                    process_vm_readv: Operation not permitted
                    mem PermissionError
                    environ PermissionError
                    fd/3 PermissionError
                    fd/0 PermissionError
                    maps PermissionError
                    auxv PermissionError
                    fd PermissionError
                    """, r.stdout());
            // Nothing it tried reached the zygote: the next block still forks from it.
            assertEquals(BlockOutcome.ZYGOTE, start(run(s, engine, "print(1)")));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aZygoteTheBlockTouchedIsReplacedBeforeTheNextBlock(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        SandboxEngine plain = Backends.plain(backend);
        String expected;
        try (SandboxSession p = plain.openSession("python", limits(plain))) {
            expected = run(p, plain, INHERITED).stdout();
        }
        List<String> attacks = List.of(
                "os.kill(z, 9)",
                "os.kill(z, 19)",                                   // SIGSTOP
                "os.kill(z, 15)",                                   // SIGTERM: blocked, stays pending
                "os.kill(z, 18)",                                   // SIGCONT
                "os.kill(z, 10)",                                   // SIGUSR1
                "import resource\nresource.prlimit(z, resource.RLIMIT_NOFILE, (64, 64))",
                "import resource\nresource.prlimit(z, resource.RLIMIT_CPU, (1, 1))",
                "os.setpriority(os.PRIO_PROCESS, z, 10)",
                "os.sched_setscheduler(z, os.SCHED_IDLE, os.sched_param(0))",
                "os.sched_setaffinity(z, {sorted(os.sched_getaffinity(z))[0]})",
                "libc = ctypes.CDLL(None, use_errno=True)\nassert libc.syscall(251, 1, z, (2 << 13) | 7) == 0, 'ioprio_set'");
        try (SandboxSession s = engine.openSession("python", limits(engine))) {
            run(s, engine, "pass");
            for (String attack : attacks) {
                ExecutionResult touched = run(s, engine, FIND_ZYGOTE + attack + "\nprint(z)\n");
                assertEquals(BlockOutcome.ZYGOTE, start(touched), attack);
                // Found touched when the block ended, it was replaced before the next one.
                ExecutionResult next = run(s, engine, FIND_ZYGOTE + INHERITED + "print(z)\n");
                assertEquals(BlockOutcome.ZYGOTE, start(next), attack);
                String[] lines = next.stdout().split("\n");
                assertEquals(expected, lines[0] + "\n", attack + ": what the next block inherits is a plain start's");
                assertTrue(!touched.stdout().equals(lines[1] + "\n"), attack + ": the next block's zygote is a new one");
            }
        }
    }

    /** A block that keeps touching the zygote costs its session the zygote: after max-restarts, plain starts only. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aBlockThatKeepsKillingTheZygoteEndsUpWithPlainStarts(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        int restarts = engine.settings().zygote().maxRestarts();
        try (SandboxSession s = engine.openSession("python", limits(engine))) {
            run(s, engine, "pass");
            int zygoteBlocks = 0;
            for (int i = 0; i < 2 * (restarts + 2); i++) {
                ExecutionResult r = run(s, engine, "import os, signal\n"
                        + "for p in os.listdir('/proc'):\n"
                        + "    if p.isdigit() and int(p) != os.getpid():\n"
                        + "        try:\n"
                        + "            if b'_agentexec_run' in open('/proc/%s/cmdline' % p, 'rb').read(): os.kill(int(p), 9)\n"
                        + "        except OSError: pass\n");
                zygoteBlocks += BlockOutcome.ZYGOTE.equals(start(r)) ? 1 : 0;
            }
            assertEquals(restarts + 1, zygoteBlocks, "the first zygote and one per restart");
            assertEquals(BlockOutcome.EXEC, start(run(s, engine, "print(1)")));
        }
    }

    /** Start-up reads the user site directory (in $HOME, the workspace): a block that changes it gets what a plain start gets. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void startUpFilesABlockPlantedAreReadAsAPlainStartReadsThem(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        SandboxEngine plain = Backends.plain(backend);
        String plant = """
                import os, site
                os.makedirs(site.getusersitepackages(), exist_ok=True)
                open(os.path.join(site.getusersitepackages(), 'planted.pth'), 'w').write("import sys; sys.planted = 'yes'\\n")
                print('planted')
                """;
        String look = "import sys\nprint(getattr(sys, 'planted', None), [p for p in sys.path if 'site-packages' in p and '/workspace' in p])\n";
        try (SandboxSession p = plain.openSession("python", limits(plain));
             SandboxSession z = engine.openSession("python", limits(engine))) {
            run(z, engine, "pass");
            assertEquals(run(p, plain, plant).stdout(), run(z, engine, plant).stdout());
            ExecutionResult plainLook = run(p, plain, look);
            assertTrue(plainLook.stdout().startsWith("yes ["), plainLook::toString);
            ExecutionResult declined = run(z, engine, look);
            assertEquals(BlockOutcome.EXEC, start(declined), "the zygote started before the .pth existed");
            assertEquals(plainLook.stdout(), declined.stdout());
            ExecutionResult fresh = run(z, engine, look);
            assertEquals(BlockOutcome.ZYGOTE, start(fresh), "a zygote started after it reads it too");
            assertEquals(plainLook.stdout(), fresh.stdout());
        }
    }

    /** Processes a block leaves die with it (the zygote is spared, nothing else), however they detached. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void nothingABlockStartedOutlivesItButTheZygote(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        String marker = "zygote-leftover-" + UUID.randomUUID();
        try (SandboxSession s = engine.openSession("python", limits(engine))) {
            run(s, engine, "pass");
            String zygoteBefore = run(s, engine, FIND_ZYGOTE + "print(z)").stdout();
            ExecutionResult r = run(s, engine, """
                    import os, subprocess
                    subprocess.Popen(['sh', '-c', 'trap "" TERM HUP; exec sleep 600 # %s'], start_new_session=True)
                    if os.fork() == 0:
                        os.setsid()
                        if os.fork() == 0:
                            os.execvp('sh', ['sh', '-c', 'trap "" TERM; exec sleep 600 # %s'])
                        os._exit(0)
                    os.wait()
                    print('left them')
                    """.formatted(marker, marker));
            assertEquals(BlockOutcome.ZYGOTE, start(r));
            assertEquals(List.of(), HostProcesses.withMarker(marker), "the block's detached processes are gone");
            ExecutionResult after = run(s, engine, FIND_ZYGOTE + "print(z)");
            assertEquals(BlockOutcome.ZYGOTE, start(after));
            assertEquals(zygoteBefore, after.stdout(), "the zygote is the same one: ending a block spared it");
            // A fork bomb within the pids limit and the timeout: contained, and the session goes on.
            Limits shortLimits = limits(engine).withTimeout(Duration.ofSeconds(3));
            ExecutionResult bomb = s.execute(ExecutionRequest.of("python",
                    "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", shortLimits));
            assertEquals(Verdict.TIMEOUT, bomb.verdict(), bomb::toString);
            ExecutionResult afterBomb = run(s, engine, "print('after the bomb')");
            assertEquals("after the bomb\n", afterBomb.stdout());
        }
    }

    /** An interpreter version outside the configured list gets plain starts (the zygote refuses, the agent notes why). */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void anUntestedPythonVersionGetsPlainStarts(BackendChoice backend) {
        SandboxEngine engine = Backends.variant("python-3.9-only", backend, s -> s.withLanguages(new LanguageTable(
                s.languages().all().stream().map(l -> l.zygote().isEmpty() ? l : new Language(l.name(), l.aliases(),
                        l.image(), l.command(), l.extension(), l.environment(),
                        Optional.of(new Zygote(l.zygote().get().bootstrap(), List.of("3.9"))))).toList())));
        try (SandboxSession s = engine.openSession("python", limits(engine))) {
            List<Integer> pids = new java.util.ArrayList<>();
            for (int i = 0; i < 5; i++) {
                ExecutionResult r = run(s, engine, "import os\nprint(os.getpid())");
                assertEquals(BlockOutcome.EXEC, start(r));
                pids.add(Integer.parseInt(r.stdout().strip()));
            }
            // The zygote refused once; no other is started after later blocks (each would cost a Python start):
            // between two blocks no process but the block's own was made.
            assertEquals(1, pids.get(4) - pids.get(3), pids::toString);
            assertEquals(1, pids.get(3) - pids.get(2), pids::toString);
        }
    }
}
