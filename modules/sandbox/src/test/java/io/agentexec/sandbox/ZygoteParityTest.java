package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.model.BlockOutcome;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The same programs both ways, on both backends: a plain start ({@code python3 -u FILE}, zygotes off) and a fork of
 * the pre-initialised interpreter (a warm session's later blocks). Every observable the program can print is
 * compared byte for byte, with the verdict, exit code, signal, truncation, files written and AG2's reply; the zygote
 * runs must say they ran in the zygote. Nothing here is timed.
 */
class ZygoteParityTest {

    static Stream<BackendChoice> engines() {
        return Stream.of(BackendChoice.DOCKER, BackendChoice.BWRAP);
    }

    /**
     * How a sandbox's first block starts: Docker's warm pool pre-starts the image's interpreter in every container it
     * makes (a zygote, see WarmPool), so there the first block is a fork too; bubblewrap has no pool.
     */
    private static String firstStart(BackendChoice backend) {
        return backend == BackendChoice.DOCKER ? BlockOutcome.ZYGOTE : BlockOutcome.EXEC;
    }

    /** One program: its code, stdin, and the limits of its request (from the session's). */
    private record Case(String name, String code, String stdin, UnaryOperator<Limits> limits) {
        Case(String name, String code) {
            this(name, code, "", l -> l);
        }

        Case(String name, String code, String stdin) {
            this(name, code, stdin, l -> l);
        }
    }

    /** Everything about the process a program can see, printed as sorted JSON. */
    private static final String PROBE = """
            import os, sys, json, resource, signal, io, time
            before = sorted(sys.modules)
            d = {}
            d['argv'] = sys.argv
            d['orig_argv'] = sys.orig_argv
            d['name'] = __name__
            d['file'] = __file__
            d['cached'] = repr(__cached__)
            d['loader'] = type(__loader__).__name__
            d['spec'] = repr(__spec__)
            d['package'] = repr(__package__)
            d['doc'] = repr(__doc__)
            d['globals'] = [k for k in globals() if k not in ('os', 'sys', 'json', 'resource', 'signal', 'io', 'time', 'before', 'd')]
            d['path'] = sys.path
            d['cwd'] = os.getcwd()
            d['environ'] = dict(os.environ)
            d['environ_raw'] = open('/proc/self/environ', 'rb').read().decode()
            d['rlimits'] = {n: resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith('RLIMIT_')}
            u = os.umask(0); os.umask(u); d['umask'] = u
            d['ppid'] = os.getppid()
            d['pgid_is_pid'] = os.getpgid(0) == os.getpid()
            d['sid_is_pid'] = os.getsid(0) == os.getpid()
            d['ids'] = [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()]
            d['flags'] = repr(sys.flags)
            d['isatty'] = [sys.stdin.isatty(), sys.stdout.isatty(), sys.stderr.isatty()]
            d['signals'] = {int(s): repr(signal.getsignal(s)) for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)}
            d['mask'] = sorted(int(s) for s in signal.pthread_sigmask(signal.SIG_BLOCK, []))
            d['fds'] = sorted(os.listdir('/proc/self/fd'))
            d['fd_targets'] = [os.readlink('/proc/self/fd/%d' % f)[:5] for f in (0, 1, 2)]
            d['modules_at_start'] = before
            d['stdio'] = [repr(s) for s in (sys.stdin, sys.stdout, sys.stderr)] + [
                sys.stdout.write_through, sys.stdout.line_buffering, sys.stderr.write_through, sys.stderr.line_buffering,
                sys.stdin.line_buffering, [s.encoding for s in (sys.stdin, sys.stdout, sys.stderr)],
                [s.errors for s in (sys.stdin, sys.stdout, sys.stderr)], type(sys.stdin.buffer).__name__,
                type(sys.stdout.buffer).__name__, sys.stdin.buffer.raw.name, sys.__stdout__ is sys.stdout]
            d['executable'] = sys.executable
            d['prefix'] = [sys.prefix, sys.base_prefix, sys.exec_prefix]
            d['recursionlimit'] = sys.getrecursionlimit()
            d['f_back'] = repr(sys._getframe().f_back)
            d['importer_cache_has_script'] = os.path.abspath(__file__) in sys.path_importer_cache
            d['importer_cache'] = sorted(k for k in sys.path_importer_cache)
            status = {l.split(':')[0]: l.split(':', 1)[1].strip() for l in open('/proc/self/status')}
            d['status'] = {k: status.get(k) for k in ('SigBlk', 'SigIgn', 'SigCgt', 'SigPnd', 'ShdPnd', 'Threads',
                           'NoNewPrivs', 'Seccomp', 'CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb', 'TracerPid', 'Umask')}
            st = os.stat('/proc/self/status')
            d['dumpable'] = [st.st_uid, st.st_gid] == [os.getuid(), os.getgid()]
            d['nice'] = os.getpriority(os.PRIO_PROCESS, 0)
            d['sched'] = [os.sched_getscheduler(0), sorted(os.sched_getaffinity(0))]
            d['stdin'] = sys.stdin.read()
            d['warnings'] = repr(sys.warnoptions)
            d['threads'] = __import__('threading').active_count()
            d['excepthook'] = repr(sys.excepthook) + repr(sys.displayhook)
            print(json.dumps(d, sort_keys=True, indent=1))
            """;

    private static List<Case> cases() {
        String marker = "zygote-parity-" + UUID.randomUUID();
        List<Case> c = new ArrayList<>();
        c.add(new Case("observables", PROBE, "stdin line 1\nline 2\n"));
        c.add(new Case("traceback", "def f():\n    raise ValueError('boom')\nprint('before')\nf()\n"));
        c.add(new Case("chained exception", "try:\n    1/0\nexcept Exception as e:\n    raise KeyError('k') from e\n"));
        c.add(new Case("syntax error", "print('a'\nx = = 2\n"));
        c.add(new Case("null byte in the source", "print(1)\0\n"));
        c.add(new Case("a coding line", "# -*- coding: latin-1 -*-\nprint(repr('\u00e9'))\n"));
        c.add(new Case("a byte-order mark", "\ufeffprint('bom')\n"));
        c.add(new Case("exit code", "import sys\nprint('x')\nsys.exit(3)\n"));
        c.add(new Case("exit with a message", "import sys\nsys.exit('bye')\n"));
        c.add(new Case("SystemExit without a code", "raise SystemExit\n"));
        c.add(new Case("os._exit", "import os\nprint('a', flush=True)\nos._exit(7)\n"));
        c.add(new Case("an unhandled KeyboardInterrupt dies of SIGINT", "raise KeyboardInterrupt\n"));
        c.add(new Case("SIGINT", "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\n"));
        c.add(new Case("SIGTERM", "import os, signal\nprint('t', flush=True)\nos.kill(os.getpid(), signal.SIGTERM)\n"));
        c.add(new Case("a segfault", "import ctypes\nctypes.string_at(0)\n"));
        c.add(new Case("atexit", "import atexit\natexit.register(lambda: print('atexit ran'))\nprint('main')\n"));
        c.add(new Case("atexit after the script: no __file__", "import atexit\ndef f():\n    try:\n        print(__file__)\n"
                + "    except NameError as e:\n        print('NameError', e)\natexit.register(f)\n"));
        c.add(new Case("atexit after an error", "import atexit\natexit.register(lambda: print('after error'))\n1/0\n"));
        c.add(new Case("atexit sees the error in sys.last_type", "import sys, atexit\n"
                + "atexit.register(lambda: print('last:', getattr(sys, 'last_type', None)))\nraise RuntimeError('x')\n"));
        c.add(new Case("a custom excepthook", "import sys\nsys.excepthook = lambda t, v, tb: print('hook', t.__name__)\n"
                + "raise RuntimeError('x')\n"));
        c.add(new Case("PYTHONINSPECT set by the script", "import os\nos.environ['PYTHONINSPECT'] = '1'\nraise ValueError(1)\n"));
        c.add(new Case("threads and the shutdown join", """
                import threading, sys
                go = threading.Event()
                def worker():
                    go.wait()
                    print('worker', threading.current_thread() is threading.main_thread(), flush=True)
                threading.Thread(target=worker).start()
                print('main', threading.current_thread().name, threading.active_count(), flush=True)
                go.set()
                sys.exit(4)
                """));
        c.add(new Case("multiprocessing, fork", """
                import multiprocessing as mp, os
                def f(x):
                    return (x * x, os.getppid() == parent)
                parent = os.getpid()
                if __name__ == '__main__':
                    with mp.get_context('fork').Pool(2) as p:
                        print(p.map(f, range(5)))
                    print(mp.current_process().name, mp.parent_process())
                """));
        c.add(new Case("multiprocessing, spawn", """
                import multiprocessing as mp
                def f(x):
                    return x + 1
                if __name__ == '__main__':
                    with mp.get_context('spawn').Pool(1) as p:
                        print(p.map(f, [1, 2]))
                """));
        c.add(new Case("subprocess", """
                import subprocess, sys, os
                print(subprocess.run([sys.executable, '-c', 'import sys; print(sys.argv, sys.flags.dont_write_bytecode)'],
                                     capture_output=True, text=True).stdout, end='')
                out = subprocess.check_output(['sh', '-c', 'echo $PPID; ls /proc/self/fd']).decode().split()
                print(int(out[0]) == os.getpid(), out[1:])
                """));
        c.add(new Case("unbuffered output", """
                import os, sys
                print('one')
                os.write(1, b'two\\n')
                sys.stdout.write('three\\n')
                os.write(1, b'four\\n')
                print('e1', file=sys.stderr)
                os.write(2, b'e2\\n')
                """));
        c.add(new Case("stdin by lines and input()", "import sys\nprint(input('prompt> '))\nfor l in sys.stdin: print(repr(l))\n",
                "first\nsecond\nthird"));
        c.add(new Case("binary stdin", "import sys\nprint(sys.stdin.buffer.read())\n", "\u00e9\u0000x"));
        c.add(new Case("no stdin", "import sys\nprint(repr(sys.stdin.read()), sys.stdin.isatty())\n"));
        c.add(new Case("unicode and invalid bytes out", "import sys\nprint('h\u00e9llo \u2603')\n"
                + "sys.stdout.buffer.write(b'\\xff\\xfe\\n')\n"));
        c.add(new Case("warnings with stacklevel past the top", "import warnings\nwarnings.warn('careful')\n"
                + "warnings.warn('deep', stacklevel=2)\n"));
        c.add(new Case("recursion depth", """
                import sys
                n = 0
                def f():
                    global n
                    n += 1
                    f()
                try:
                    f()
                except RecursionError:
                    print(n, sys.getrecursionlimit())
                def g(k): return g(k + 1)
                g(0)
                """));
        c.add(new Case("the stack under the script", """
                import sys, traceback, inspect, logging
                print(sys._getframe().f_back, len(inspect.stack()))
                traceback.print_stack()
                logging.basicConfig()
                logging.warning('w', stack_info=True)
                def f():
                    return len(traceback.extract_stack())
                print(f())
                """));
        c.add(new Case("recursion depth at exit", """
                import sys, atexit
                def depth():
                    def r(k):
                        try:
                            return r(k + 1)
                        except RecursionError:
                            return k
                    n, f = 0, sys._getframe()
                    while f:
                        n, f = n + 1, f.f_back
                    print('frames', n, 'depth', r(0))
                atexit.register(depth)
                sys.exit(2)
                """));
        c.add(new Case("the __main__ module", "'''doc'''\nimport __main__, sys\nx: int = 3\n"
                + "print(__main__ is sys.modules['__main__'], __main__.__file__ == __file__, __doc__, __annotations__)\n"));
        c.add(new Case("stdout closed", "import os\nos.close(1)\nprint('x')\n"));
        c.add(new Case("stdout that cannot be flushed at exit", "import sys\nsys.stdout = open('/dev/full', 'w')\nprint('x')\n"));
        c.add(new Case("ctypes and struct after the zygote's own import", """
                import ctypes, os, struct, types
                print(ctypes.CDLL(None).getpid() == os.getpid(), ctypes.sizeof(ctypes.c_long), struct.pack('>I', 1))
                print(types.SimpleNamespace(a=1))
                """));
        c.add(new Case("files written", "import os\nos.makedirs('out/sub', exist_ok=True)\n"
                + "open('out/sub/a.txt', 'w').write('hello')\nopen('b.bin', 'wb').write(bytes(1000))\n"));
        c.add(new Case("module state set by this block", """
                import json, os, sys
                json.marker = 1
                sys.marker = 2
                os.environ['MARKER'] = '3'
                os.chdir('/tmp')
                print('set')
                """));
        c.add(new Case("module state of the previous block is not carried", """
                import json, os, sys
                print(hasattr(json, 'marker'), hasattr(sys, 'marker'), os.environ.get('MARKER'), os.getcwd())
                """));
        c.add(new Case("a file-size limit", "open('/tmp/big', 'wb').write(bytes(3 << 20))\n", "",
                l -> l.withWorkspaceBytes(2L << 20)));
        c.add(new Case("output over the cap", "while True:\n    print('y' * 99)\n", "", l -> l.withOutputBytesPerStream(10_000)));
        c.add(new Case("timeout with a detached child that ignores SIGTERM", """
                import os, signal, subprocess, time
                subprocess.Popen(['sh', '-c', 'trap "" TERM; exec sleep 600 # %s'], start_new_session=True)
                print('started', flush=True)
                time.sleep(60)
                """.formatted(marker), "", l -> l.withTimeout(Duration.ofSeconds(3))));
        c.add(new Case("after the timeout", "print('after')\n"));
        return c;
    }

    private static Limits limits(SandboxEngine engine) {
        return engine.defaultLimits().withTimeout(Duration.ofSeconds(60));
    }

    /** What a caller of the engine sees of a result, but how the block started and how long it took. */
    private static Map<String, Object> observable(ExecutionResult r) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("verdict", r.verdict());
        m.put("exitCode", r.exitCode());
        m.put("signal", r.signal());
        m.put("stdout", r.stdout());
        m.put("stderr", r.stderr());
        m.put("stdoutTruncated", r.stdoutTruncated());
        m.put("stderrTruncated", r.stderrTruncated());
        m.put("stdoutBytes", r.stdoutBytes());
        m.put("stderrBytes", r.stderrBytes());
        m.put("filesWritten", r.filesWritten());
        m.put("message", r.message());
        m.put("blocks", r.blocks().stream().map(b -> List.of(b.index(), b.language(), b.verdict(), b.exitCode())).toList());
        return m;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void everyProgramBehavesAsAPlainStartDoes(BackendChoice backend) {
        SandboxEngine plain = Backends.plain(backend);
        SandboxEngine zygote = Backends.engine(backend);
        List<String> differences = new ArrayList<>();
        try (SandboxSession p = plain.openSession("python", limits(plain));
             SandboxSession z = zygote.openSession("python", limits(zygote))) {
            ExecutionResult first = z.execute(ExecutionRequest.of("python", "pass", limits(zygote)));
            assertEquals(firstStart(backend), first.blocks().get(0).start(), "a session's first block");
            for (Case c : cases()) {
                ExecutionResult a = p.execute(request(c, limits(plain)));
                ExecutionResult b = z.execute(request(c, limits(zygote)));
                assertEquals(BlockOutcome.EXEC, a.blocks().get(0).start(), c.name() + ": zygotes are off");
                if (!BlockOutcome.ZYGOTE.equals(b.blocks().get(0).start())) {
                    differences.add(c.name() + ": did not run in the zygote");
                }
                if (!observable(a).equals(observable(b))) {
                    differences.add(c.name() + ":\n  plain : " + observable(a) + "\n  zygote: " + observable(b));
                }
            }
        }
        assertEquals(List.of(), differences, () -> String.join("\n", differences));
    }

    private static ExecutionRequest request(Case c, Limits sessionLimits) {
        return ExecutionRequest.builder(c.limits().apply(sessionLimits)).block("python", c.code())
                .stdin(c.stdin().getBytes(StandardCharsets.UTF_8)).build();
    }

    /** A block's processes are new ones: pid, and the process group and session it leads, differ from the last's. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void everyBlockIsANewProcess(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        try (SandboxSession s = engine.openSession("python", limits(engine))) {
            List<String> pids = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                ExecutionResult r = s.execute(ExecutionRequest.of("python",
                        "import os\nprint(os.getpid(), os.getpgid(0), os.getsid(0))", limits(engine)));
                assertEquals(Verdict.OK, r.verdict(), r::toString);
                assertEquals(i == 0 ? firstStart(backend) : BlockOutcome.ZYGOTE, r.blocks().get(0).start());
                pids.add(r.stdout());
            }
            assertEquals(pids.size(), pids.stream().distinct().count(), pids::toString);
        }
    }

    /** A memory verdict in the zygote is the kernel's, as for a plain start (the limit leaves room for a zygote). */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aMemoryBombGivesMemoryLimitInTheZygoteToo(BackendChoice backend) {
        SandboxEngine plain = Backends.plain(backend);
        SandboxEngine zygote = Backends.engine(backend);
        Limits limits = limits(zygote).withMemoryBytes(160L << 20);
        String bomb = "chunks = []\nwhile True:\n    chunks.append(bytearray(8 << 20))\n";
        String fits = "x = bytearray(60 << 20)\nprint(len(x))\n";
        try (SandboxSession p = plain.openSession("python", limits); SandboxSession z = zygote.openSession("python", limits)) {
            z.execute(ExecutionRequest.of("python", "pass", limits));
            for (String code : List.of(fits, bomb, fits)) {
                ExecutionResult a = p.execute(ExecutionRequest.of("python", code, limits));
                ExecutionResult b = z.execute(ExecutionRequest.of("python", code, limits));
                assertEquals(observable(a), observable(b));
                assertEquals(code == bomb ? Verdict.MEMORY_LIMIT : Verdict.OK, b.verdict(), b::toString);
            }
        }
    }

    /**
     * A forked block's process has its own copy of the interpreter's writable memory before its code runs (made in
     * one madvise(MADV_POPULATE_WRITE) while it waits for its block), not pages still shared with the zygote that
     * its run and its exit would copy a fault at a time. Its memory is private as a plain start's is: what it
     * reports as shared and dirty is a small part of what it has. Kernels without MADV_POPULATE_WRITE (before 5.14)
     * copy on first write as before: skipped there, with the reason.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aForkedBlockHasItsOwnCopyOfTheInterpretersMemoryBeforeItRuns(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        String code = """
                kb = {l.split(':')[0]: int(l.split()[1]) for l in open('/proc/self/smaps_rollup') if l.endswith('kB\\n')}
                import ctypes, mmap
                libc = ctypes.CDLL(None, use_errno=True)
                libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
                m = mmap.mmap(-1, 1 << 16)
                address = ctypes.addressof(ctypes.c_char.from_buffer(m))
                supported = libc.madvise(address, 1 << 16, 23) == 0
                print(kb['Shared_Dirty'], kb['Private_Dirty'], supported, ctypes.get_errno())
                """;
        try (SandboxSession s = engine.openSession("python", limits(engine))) {
            s.execute(ExecutionRequest.of("python", "pass", limits(engine)));
            ExecutionResult r = s.execute(ExecutionRequest.of("python", code, limits(engine)));
            assertEquals(Verdict.OK, r.verdict(), r::toString);
            assertEquals(BlockOutcome.ZYGOTE, r.blocks().get(0).start(), r::toString);
            String[] seen = r.stdout().trim().split(" ");
            assumeTrue(Boolean.parseBoolean(seen[2]),
                    "this kernel refuses madvise(MADV_POPULATE_WRITE) (errno " + seen[3] + "; Linux >= 5.14 has it): "
                            + "a forked block copies the zygote's pages on first write there");
            long sharedDirty = Long.parseLong(seen[0]);
            long privateDirty = Long.parseLong(seen[1]);
            assertTrue(sharedDirty * 8 < privateDirty,
                    "shared dirty " + sharedDirty + " kB, private dirty " + privateDirty + " kB at the block's start");
        }
    }

    /** Blocks of one zygote share its hash seed; forks-per-zygote = 1 gives each block a fresh interpreter's. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void forksPerZygoteOfOneGivesEveryBlockItsOwnHashSeed(BackendChoice backend) {
        SandboxEngine shared = Backends.engine(backend);
        SandboxEngine fresh = Backends.variant("one-fork-per-zygote", backend, s -> s.withZygote(s.zygote().withForksPerZygote(1)));
        String hash = "print(hash('agentexec'))";
        for (SandboxEngine engine : List.of(shared, fresh)) {
            try (SandboxSession s = engine.openSession("python", limits(engine))) {
                s.execute(ExecutionRequest.of("python", "pass", limits(engine)));
                List<String> seen = new ArrayList<>();
                for (int i = 0; i < 3; i++) {
                    ExecutionResult r = s.execute(ExecutionRequest.of("python", hash, limits(engine)));
                    assertEquals(BlockOutcome.ZYGOTE, r.blocks().get(0).start(), r::toString);
                    seen.add(r.stdout());
                }
                if (engine == shared) {
                    assertEquals(1, seen.stream().distinct().count(), "one zygote, one seed: " + seen);
                } else {
                    assertEquals(3, seen.stream().distinct().count(), "a zygote per block, a seed per block: " + seen);
                }
            }
        }
        assertNotEquals(shared, fresh);
    }

    /**
     * A one-off's blocks after its first fork from a zygote started after the first; none is started after its last
     * block (it would only die with the sandbox, a start's CPU for nothing).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aOneOffUsesAZygoteForItsLaterBlocksAndStartsNoneAfterItsLast(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        ExecutionResult oneOff = engine.execute(ExecutionRequest.builder(limits(engine)).block("python", "print(1)")
                .block("python", "print(2)").block("python", "print(3)").build());
        assertEquals(List.of(firstStart(backend), BlockOutcome.ZYGOTE, BlockOutcome.ZYGOTE),
                oneOff.blocks().stream().map(BlockOutcome::start).toList(), oneOff::toString);
        assertEquals("1\n2\n3\n", oneOff.stdout());
        try (SandboxSession s = engine.openSession("python", limits(engine))) {
            s.executeLast(ExecutionRequest.of("python", "print(1)", limits(engine)), io.agentexec.sandbox.agent.OutputListener.NONE);
            ExecutionResult next = s.execute(ExecutionRequest.of("python", "print(2)", limits(engine)));
            // Docker: the zygote the pool pre-started is still there (a last request only starts none after it)
            assertEquals(firstStart(backend), next.blocks().get(0).start(), "no zygote was started after a last request");
            ExecutionResult after = s.execute(ExecutionRequest.of("python", "print(3)", limits(engine)));
            assertEquals(BlockOutcome.ZYGOTE, after.blocks().get(0).start());
        }
    }

    /** Blocks whose memory limit is below zygote.min-memory, and other languages, start plainly. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void smallMemoryLimitsAndOtherLanguagesGetPlainStarts(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        Limits small = limits(engine).withMemoryBytes(engine.settings().zygote().minMemoryBytes() - (1 << 20));
        try (SandboxSession s = engine.openSession("python", small)) {
            for (int i = 0; i < 3; i++) {
                ExecutionResult r = s.execute(ExecutionRequest.of("python", "print(1)", small));
                assertEquals("1\n", r.stdout());
                assertEquals(BlockOutcome.EXEC, r.blocks().get(0).start());
            }
        }
        try (SandboxSession s = engine.openSession("python", limits(engine))) {
            s.execute(ExecutionRequest.of("python", "pass", limits(engine)));
            ExecutionResult sh = s.execute(ExecutionRequest.of("bash", "echo $0", limits(engine)));
            assertEquals(BlockOutcome.EXEC, sh.blocks().get(0).start());
            ExecutionResult py = s.execute(ExecutionRequest.of("python", "print(2)", limits(engine)));
            assertEquals(BlockOutcome.ZYGOTE, py.blocks().get(0).start(), "a bash block leaves the zygote alone");
            assertTrue(py.stdout().equals("2\n"));
        }
    }
}
