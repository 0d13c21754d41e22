package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.docker.DockerBackend;
import io.agentexec.sandbox.model.BlockOutcome;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/**
 * Recycled one-off sandboxes (Docker, {@code docker.recycle}): a one-off's container, scrubbed after its run, serves the
 * same tenant's next one-off. The first run of each case is hostile: it leaves everything it can behind (files in every
 * writable place, background processes, SysV and POSIX IPC objects, a changed {@code $HOME}, start-up files, open pipes
 * and files, changed limits of the sandbox's init); the next run of the same tenant, in the same container (checked by
 * its host name, the container's id), must find a sandbox as fresh as a new one. Another tenant never gets it, and a
 * run that ended badly (timeout, memory, output, cancel), or one that changed what the agent cannot reset, retires it.
 * Each tenant here is new, so its first one-off takes a fresh container and its second can only get that one back.
 */
class RecyclingIsolationTest {
    private final SandboxEngine engine = Backends.docker();
    private final DockerBackend backend = (DockerBackend) engine.backend();

    /** Prints the container's host name (its id) first: which container the run had. */
    private static final String HOST = "import socket, os, sys\nprint(socket.gethostname())\n";

    private static String tenant() {
        return "tenant-" + UUID.randomUUID().toString().substring(0, 8);
    }

    private Limits limits() {
        return engine.defaultLimits().withTimeout(Duration.ofSeconds(60));
    }

    private ExecutionResult oneOff(String tenant, String code) {
        return oneOff(tenant, ExecutionRequest.of("python", HOST + code, limits()));
    }

    private ExecutionResult oneOff(String tenant, ExecutionRequest request) {
        try (OneOffRun run = engine.oneOff(request, Optional.of(tenant))) {
            return run.execute(OutputListener.NONE);
        }
    }

    private static String host(ExecutionResult r) {
        return r.stdout().lines().findFirst().orElseThrow(() -> new AssertionError("no output: " + r));
    }

    /** What follows the host name. */
    private static String rest(ExecutionResult r) {
        return r.stdout().lines().skip(1).reduce("", (a, b) -> a + b + "\n");
    }

    private static ExecutionResult ok(ExecutionResult r) {
        assertEquals(Verdict.OK, r.verdict(), r::toString);
        return r;
    }

    /** The first run plants, the second (same tenant) must be in the same container and see what {@code expected} says. */
    private String plantThenCheck(String plant, String check) {
        String tenant = tenant();
        ExecutionResult first = ok(oneOff(tenant, plant));
        ExecutionResult second = ok(oneOff(tenant, check));
        assertEquals(host(first), host(second), "the second one-off of the tenant got the first one's container back");
        return rest(second);
    }

    @Test
    void filesInTheWorkspaceTmpAndDevShmAreGone() {
        String seen = plantThenCheck("""
                        os.makedirs('/workspace/.hidden/deep/er', exist_ok=True)
                        open('/workspace/.hidden/deep/er/f', 'w').write('x')
                        open('/workspace/left.txt', 'w').write('left')
                        os.makedirs('/workspace/locked/inner')
                        open('/workspace/locked/inner/f', 'w').write('x')
                        os.chmod('/workspace/locked/inner', 0)
                        os.chmod('/workspace/locked', 0)
                        os.symlink('/tmp', '/workspace/to-tmp')
                        open('/tmp/left', 'w').write('left')
                        os.makedirs('/tmp/.X11-unix/sub')
                        os.mkfifo('/tmp/fifo')
                        open('/dev/shm/left', 'w').write('left')
                        """, """
                        mine = os.path.basename(__file__)
                        print(sorted(set(os.listdir('/workspace')) - {mine}), os.listdir('/tmp'), os.listdir('/dev/shm'))
                        """);
        assertEquals("[] [] []\n", seen);
    }

    @Test
    void backgroundProcessesAreGoneHoweverTheyDetached() {
        String marker = "agentexec-recycled-" + UUID.randomUUID();
        String seen = plantThenCheck("""
                        import subprocess
                        m = '%s'
                        subprocess.Popen(['bash', '-c', 'exec -a ' + m + '-setsid sleep 1000'], start_new_session=True)
                        subprocess.run(['bash', '-c', '( ( exec -a ' + m + '-double sleep 1000 ) & ) &'])
                        subprocess.Popen(['bash', '-c', 'trap "" TERM HUP; exec -a ' + m + '-deaf sleep 1000'],
                                         start_new_session=True)
                        subprocess.Popen(['nohup', 'bash', '-c', 'exec -a ' + m + '-nohup sleep 1000'],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                        """.formatted(marker), """
                        others = []
                        for p in os.listdir('/proc'):
                            if p.isdigit() and int(p) not in (1, os.getpid()):
                                cmd = open('/proc/%s/cmdline' % p, 'rb').read().replace(b'\\0', b' ').decode()
                                if '_agentexec_run' not in cmd:  # the agent's pre-started interpreter
                                    others.append(cmd)
                        print(others)
                        """);
        assertEquals("[]\n", seen);
        assertEquals(List.of(), HostProcesses.withMarker(marker));
    }

    @Test
    void sysvSharedMemorySemaphoresAndMessageQueuesAreGone() {
        String seen = plantThenCheck("""
                        import ctypes
                        libc = ctypes.CDLL(None, use_errno=True)
                        IPC_CREAT = 0o1000
                        for key in (0x1234, 0x5678):
                            assert libc.shmget(key, 65536, IPC_CREAT | 0o600) >= 0, ctypes.get_errno()
                            assert libc.semget(key, 4, IPC_CREAT | 0o600) >= 0, ctypes.get_errno()
                            assert libc.msgget(key, IPC_CREAT | 0o600) >= 0, ctypes.get_errno()
                        # a segment nobody may even read, and one with no key
                        assert libc.shmget(0x9abc, 4096, IPC_CREAT | 0o000) >= 0, ctypes.get_errno()
                        assert libc.shmget(0, 4096, 0o600) >= 0, ctypes.get_errno()
                        print([len(open('/proc/sysvipc/' + k).readlines()) - 1 for k in ('shm', 'sem', 'msg')])
                        """, """
                        print([len(open('/proc/sysvipc/' + k).readlines()) - 1 for k in ('shm', 'sem', 'msg')])
                        """);
        assertEquals("[0, 0, 0]\n", seen);
    }

    @Test
    void posixSharedMemoryAndMessageQueuesAreGone() {
        String seen = plantThenCheck("""
                        import ctypes, mmap
                        fd = os.open('/dev/shm/agentexec-posix-shm', os.O_CREAT | os.O_RDWR, 0o600)
                        os.ftruncate(fd, 1 << 20)
                        rt = ctypes.CDLL(None, use_errno=True)
                        rt.mq_open.restype = ctypes.c_int
                        q = rt.mq_open(b'/agentexec-queue', os.O_CREAT | os.O_RDWR, 0o600, None)
                        assert q >= 0, ctypes.get_errno()
                        assert rt.mq_send(q, b'left', 4, 0) == 0, ctypes.get_errno()
                        print(os.listdir('/dev/shm'), os.listdir('/dev/mqueue'))
                        """, """
                        print(os.listdir('/dev/shm'), os.listdir('/dev/mqueue'))
                        """);
        assertEquals("[] []\n", seen);
    }

    @Test
    void theEnvironmentIsWhatTheFirstRunStartedWith() {
        String tenant = tenant();
        String show = "import json\nprint(json.dumps(dict(sorted(os.environ.items()))))\n";
        ExecutionResult first = ok(oneOff(tenant, show + """
                os.environ['AGENTEXEC_LEFT'] = '1'
                os.putenv('AGENTEXEC_LEFT_TOO', '1')
                open('/workspace/.bashrc', 'w').write('export AGENTEXEC_BASHRC=1\\n')
                open('/workspace/.profile', 'w').write('export AGENTEXEC_PROFILE=1\\n')
                open('/workspace/.pam_environment', 'w').write('AGENTEXEC_PAM=1\\n')
                """));
        ExecutionResult second = ok(oneOff(tenant, show));
        assertEquals(host(first), host(second));
        assertEquals(rest(first), rest(second), "the environment a run starts with");
    }

    @Test
    void aProcessHoldingAPipeOrAFileOpenIsGoneAndItsSpaceFreed() {
        String usage = """
                def used(path):
                    s = os.statvfs(path)
                    return (s.f_blocks - s.f_bfree) * s.f_frsize
                """;
        String seen = plantThenCheck(usage + """
                        import subprocess
                        holder = '''
                        import os, time
                        r, w = os.pipe()
                        big = open('/tmp/big', 'wb'); big.write(b'x' * (8 << 20)); big.flush(); os.unlink('/tmp/big')
                        shm = open('/dev/shm/big', 'wb'); shm.write(b'x' * (8 << 20)); shm.flush(); os.unlink('/dev/shm/big')
                        fifo = '/workspace/fifo'; os.mkfifo(fifo); f = os.open(fifo, os.O_RDWR)
                        time.sleep(1000)
                        '''
                        subprocess.Popen(['python3', '-c', holder.replace('\\n                        ', '\\n')],
                                         start_new_session=True)
                        import time
                        for _ in range(200):
                            if used('/tmp') >= (8 << 20) and used('/dev/shm') >= (8 << 20):
                                break
                            time.sleep(0.05)
                        print(used('/tmp') >= (8 << 20), used('/dev/shm') >= (8 << 20))
                        """, usage + """
                        print(used('/tmp'), used('/dev/shm'))
                        """);
        assertEquals("0 0\n", seen);
    }

    @Test
    void aModifiedHomeAndPlantedStartupFilesAreGone() {
        String seen = plantThenCheck("""
                        import site
                        user_site = site.getusersitepackages()
                        os.makedirs(user_site, exist_ok=True)
                        open(os.path.join(user_site, 'agentexec.pth'), 'w').write("import os; os.environ['PWNED'] = 'pth'\\n")
                        open(os.path.join(user_site, 'usercustomize.py'), 'w').write("import os; os.environ['PWNED'] = 'user'\\n")
                        open('/workspace/json.py', 'w').write("import os; os.environ['PWNED'] = 'json'\\n")
                        open('/workspace/sitecustomize.py', 'w').write("import os; os.environ['PWNED'] = 'site'\\n")
                        try:
                            os.setxattr('/workspace', 'user.agentexec', b'left')
                        except OSError:
                            pass
                        os.chmod('/workspace', 0o777)
                        """, """
                        import json, site
                        print(os.environ.get('PWNED'), json.__file__.startswith('/usr/lib/python3'),
                              os.path.exists(site.getusersitepackages()), oct(os.stat('/workspace').st_mode & 0o7777),
                              os.listxattr('/workspace'), os.environ['HOME'])
                        """);
        assertEquals("None True False 0o700 [] /workspace\n", seen);
    }

    @Test
    void limitsCwdAndUmaskAreAPlainStartsWhateverTheLastRunChanged() {
        String show = """
                import resource
                print({n: resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith('RLIMIT_')},
                      os.getcwd(), oct(os.umask(0o22)), os.getpriority(os.PRIO_PROCESS, 0), sorted(os.sched_getaffinity(0)))
                """;
        String tenant = tenant();
        ExecutionResult first = ok(oneOff(tenant, show + """
                resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
                os.system('ulimit -n 32; ulimit -u 16')
                os.chdir('/tmp')
                os.umask(0)
                os.nice(5)
                """));
        ExecutionResult second = ok(oneOff(tenant, show));
        assertEquals(host(first), host(second));
        assertEquals(rest(first), rest(second), "rlimits, directory, umask, priority and affinity of a run");
    }

    /**
     * Code of the agent's uid can lower the limits, priority and CPU affinity of the sandbox's init (prlimit,
     * setpriority, sched_setaffinity on pid 1), which every later run inherits and which the agent cannot raise back:
     * its scrub finds them changed and the container is retired. The tenant's next one-off starts as a fresh one.
     */
    @Test
    void changedLimitsOfTheSandboxsInitRetireTheContainer() {
        String show = """
                import resource
                print(resource.getrlimit(resource.RLIMIT_NOFILE), os.getpriority(os.PRIO_PROCESS, 0),
                      sorted(os.sched_getaffinity(0)))
                """;
        String tenant = tenant();
        ExecutionResult first = ok(oneOff(tenant, show + """
                resource.prlimit(1, resource.RLIMIT_NOFILE, (64, 64))
                os.setpriority(os.PRIO_PROCESS, 1, 7)
                if len(os.sched_getaffinity(1)) > 1:
                    os.sched_setaffinity(1, {min(os.sched_getaffinity(1))})
                """));
        ExecutionResult second = ok(oneOff(tenant, show));
        assertNotEquals(host(first), host(second), "the container whose init was changed was retired");
        assertEquals(rest(first), rest(second), "the next run starts with a fresh sandbox's limits");
    }

    @Test
    void anotherTenantNeverGetsTheContainerNorDoesASession() {
        String owner = tenant();
        String first = host(ok(oneOff(owner, "")));
        for (int i = 0; i < 3; i++) {
            assertNotEquals(first, host(ok(oneOff(tenant(), ""))), "another tenant's one-off");
        }
        try (SandboxSession session = engine.openSession("python", limits())) {
            assertNotEquals(first, host(ok(session.execute(ExecutionRequest.of("python", HOST, limits())))),
                    "a session");
        }
        assertNotEquals(first, host(ok(engine.execute(ExecutionRequest.of("python", HOST, limits())))),
                "a one-off of no tenant");
        assertEquals(first, host(ok(oneOff(owner, ""))), "the owner's next one-off still gets it back");
    }

    /** A run that ended any other way than by itself (OK or a runtime error) retires its container. */
    @Test
    void aRunThatEndedBadlyRetiresItsContainer() throws Exception {
        record Case(String name, ExecutionRequest request, Verdict verdict) {
        }
        Limits short_ = limits().withTimeout(Duration.ofSeconds(2));
        List<Case> cases = List.of(
                new Case("timeout", ExecutionRequest.of("python", HOST + "import time\ntime.sleep(30)", short_),
                        Verdict.TIMEOUT),
                new Case("memory", ExecutionRequest.of("python", HOST + "x = bytearray(1 << 30)",
                        limits().withMemoryBytes(256L << 20)), Verdict.MEMORY_LIMIT),
                new Case("output", ExecutionRequest.of("python", HOST + "print('y' * 100000)",
                        limits().withOutputBytesPerStream(1000)), Verdict.OUTPUT_LIMIT));
        for (Case c : cases) {
            String tenant = tenant();
            ExecutionResult bad = oneOff(tenant, c.request());
            assertEquals(c.verdict(), bad.verdict(), () -> c.name() + ": " + bad);
            assertNotEquals(host(bad), host(ok(oneOff(tenant, ""))), c.name() + ": retired");
        }
        // Cancelled while it runs.
        String tenant = tenant();
        ExecutionResult cancelled;
        CompletableFuture<String> firstHost = new CompletableFuture<>();
        try (OneOffRun run = engine.oneOff(ExecutionRequest.of("python", HOST + "import time\ntime.sleep(30)", limits()),
                Optional.of(tenant))) {
            CompletableFuture<ExecutionResult> result = CompletableFuture.supplyAsync(() -> run.execute((stream, chunk) ->
                    firstHost.complete(new String(chunk, java.nio.charset.StandardCharsets.UTF_8).strip())));
            firstHost.get(60, java.util.concurrent.TimeUnit.SECONDS);
            run.cancel();
            cancelled = result.get(60, java.util.concurrent.TimeUnit.SECONDS);
        }
        assertEquals(Verdict.CANCELLED, cancelled.verdict(), cancelled::toString);
        assertNotEquals(firstHost.get(), host(ok(oneOff(tenant, ""))), "cancelled: retired");
    }

    /** Recycled sandboxes restart their pre-initialised interpreter in the emptied sandbox: the next block is a fork. */
    @Test
    void theNextOneOffRunsInTheInterpreterTheScrubStarted() {
        String tenant = tenant();
        ExecutionResult first = ok(oneOff(tenant, ""));
        ExecutionResult second = ok(oneOff(tenant, ""));
        ExecutionResult third = ok(oneOff(tenant, ""));
        assertEquals(host(first), host(third));
        assertEquals(BlockOutcome.ZYGOTE, second.blocks().get(0).start(), second::toString);
        assertEquals(BlockOutcome.ZYGOTE, third.blocks().get(0).start(), third::toString);
        assertTrue(backend.poolStats().recycled() >= 2, backend.poolStats()::toString);
    }

    /** {@code docker.recycle.max-uses}: a container serves that many one-offs, then the next gets a new one. */
    @Test
    void aContainerServesAtMostItsMaximumNumberOfUses() {
        SandboxEngine three = Backends.variant("max-uses-3", BackendChoice.DOCKER,
                s -> s.withDocker(s.docker().withRecycle(new io.agentexec.sandbox.docker.DockerBackendSettings.Recycle(
                        true, false, 3, 4, true, Duration.ofSeconds(2), Duration.ofSeconds(10)))));
        String tenant = tenant();
        List<String> hosts = new java.util.ArrayList<>();
        for (int i = 0; i < 4; i++) {
            try (OneOffRun run = three.oneOff(ExecutionRequest.of("python", HOST, limits()), Optional.of(tenant))) {
                hosts.add(host(ok(run.execute(OutputListener.NONE))));
            }
        }
        assertEquals(List.of(hosts.get(0), hosts.get(0), hosts.get(0)), hosts.subList(0, 3), hosts::toString);
        assertNotEquals(hosts.get(0), hosts.get(3), hosts::toString);
    }

    /** Where the operator shares recycled containers across tenants, another tenant may get one. */
    @Test
    void sharingAcrossTenantsIsTheOperatorsExplicitChoice() {
        SandboxEngine shared = Backends.variant("shared", BackendChoice.DOCKER,
                s -> s.withDocker(s.docker().withRecycle(new io.agentexec.sandbox.docker.DockerBackendSettings.Recycle(
                        true, true, 200, 4, true, Duration.ofSeconds(2), Duration.ofSeconds(10)))));
        String first;
        try (OneOffRun run = shared.oneOff(ExecutionRequest.of("python", HOST, limits()), Optional.of(tenant()))) {
            first = host(ok(run.execute(OutputListener.NONE)));
        }
        try (OneOffRun run = shared.oneOff(ExecutionRequest.of("python", HOST, limits()), Optional.of(tenant()))) {
            assertEquals(first, host(ok(run.execute(OutputListener.NONE))));
        }
    }
}
