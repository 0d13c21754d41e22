package io.agentexec.sandbox.bwrap;

import io.agentexec.sandbox.agent.AgentBinary;
import io.agentexec.sandbox.backend.BackendSession;
import io.agentexec.sandbox.backend.ProcessSession;
import io.agentexec.sandbox.backend.SandboxBackend;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.backend.SessionSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sandboxes as bubblewrap namespaces, for machines without Docker: every namespace unshared (so no
 * network), read-only system directories, a private tmpfs workspace and /tmp, a new session, and
 * death with the JVM. Memory and pids are held by a cgroup where the machine allows one.
 * The agent runs inside for the life of the session, as in the Docker backend.
 */
public final class BubblewrapBackend implements SandboxBackend {
    private static final Logger log = LoggerFactory.getLogger(BubblewrapBackend.class);
    private static final String AGENT_INSIDE = "/.agentexec/agentexec-agent";

    private final BubblewrapSettings settings;
    private final Path agentPath;
    private final Map<String, ProcessSession> live = new ConcurrentHashMap<>();
    private final boolean cgroupsAvailable;

    private BubblewrapBackend(BubblewrapSettings settings, Path agentPath, boolean cgroupsAvailable) {
        this.settings = settings;
        this.agentPath = agentPath;
        this.cgroupsAvailable = cgroupsAvailable;
    }

    /** True when bwrap is installed and can create all namespaces here. */
    public static boolean available(String executable) {
        try {
            Process p = new ProcessBuilder(executable, "--unshare-all", "--ro-bind", "/", "/", "--", "/bin/true")
                    .redirectErrorStream(true).start();
            p.getInputStream().readAllBytes();
            return p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (IOException e) {
            return false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    public static BubblewrapBackend start(BubblewrapSettings settings, AgentBinary agent) {
        if (!available(settings.executable())) {
            throw new SandboxUnavailableException("bubblewrap (" + settings.executable()
                    + ") is missing or cannot create namespaces here (apt-get install bubblewrap)");
        }
        Path agentPath = agent.installIn(settings.runtimeDirectory());
        Path memoryParent = settings.cgroupRoot().resolve("memory").resolve(settings.cgroupParent());
        boolean cgroups = Files.isWritable(memoryParent.getParent())
                && Files.isWritable(settings.cgroupRoot().resolve("pids"));
        if (cgroups) {
            removeStaleGroups(settings);
        } else {
            log.warn("cgroup v1 memory/pids controllers are not writable under {}: bubblewrap sandboxes get no "
                    + "memory or pids limit beyond rlimits", settings.cgroupRoot());
        }
        return new BubblewrapBackend(settings, agentPath, cgroups);
    }

    /** Empty groups left by a crashed JVM; busy ones (a live JVM's) cannot be removed and stay. */
    private static void removeStaleGroups(BubblewrapSettings settings) {
        for (String controller : List.of("memory", "pids")) {
            Path parent = settings.cgroupRoot().resolve(controller).resolve(settings.cgroupParent());
            if (!Files.isDirectory(parent)) {
                continue;
            }
            try (var children = Files.list(parent)) {
                children.filter(Files::isDirectory).forEach(dir -> {
                    try {
                        if (Files.readString(dir.resolve("cgroup.procs")).isBlank()) {
                            Files.deleteIfExists(dir);
                        }
                    } catch (IOException ignored) {
                        // busy or already gone
                    }
                });
            } catch (IOException ignored) {
                // nothing to clean
            }
        }
    }

    @Override
    public String name() {
        return "bwrap";
    }

    public boolean cgroupsAvailable() {
        return cgroupsAvailable;
    }

    @Override
    public BackendSession open(SessionSpec spec) {
        Optional<SandboxCgroup> cgroup = cgroupsAvailable
                ? SandboxCgroup.create(settings, spec.sessionId(), spec.limits())
                : Optional.empty();
        List<String> command = new ArrayList<>();
        command.add(agentPath.toString());
        command.add("launch");
        cgroup.ifPresent(g -> {
            command.addAll(List.of("--cgroup", g.memory().toString(), "--cgroup", g.pids().toString()));
        });
        command.addAll(List.of("--limit", "nofile=4096", "--"));
        command.add(settings.executable());
        command.addAll(List.of("--unshare-all", "--die-with-parent", "--new-session", "--hostname", "sandbox"));
        String[] ids = settings.user().split(":");
        command.addAll(List.of("--uid", ids[0], "--gid", ids.length > 1 ? ids[1] : ids[0]));
        for (String path : settings.readOnlyBinds()) {
            Path p = Path.of(path);
            if (Files.isSymbolicLink(p)) {
                try {
                    command.addAll(List.of("--symlink", Files.readSymbolicLink(p).toString(), path));
                } catch (IOException e) {
                    log.debug("cannot read symlink {}", path);
                }
            } else {
                command.addAll(List.of("--ro-bind-try", path, path));
            }
        }
        command.addAll(List.of("--proc", "/proc", "--dev", "/dev",
                "--size", Long.toString(settings.tmpSizeBytes()), "--tmpfs", "/tmp",
                "--size", Long.toString(spec.limits().workspaceBytes()), "--perms", "0700", "--tmpfs", settings.workspace(),
                "--ro-bind", agentPath.toString(), AGENT_INSIDE));
        cgroup.ifPresent(g -> command.addAll(List.of("--ro-bind", g.memory().toString(), "/sys/fs/cgroup/memory")));
        command.addAll(List.of("--chdir", settings.workspace(), "--clearenv",
                "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
                AGENT_INSIDE, "serve", "--contained", "--workspace", settings.workspace()));
        ProcessSession session = ProcessSession.start(spec.sessionId(), command, settings.workspace(),
                settings.agentStartTimeout(), () -> {
                    live.remove(spec.sessionId());
                    cgroup.ifPresent(SandboxCgroup::close);
                });
        live.put(spec.sessionId(), session);
        return session;
    }

    @Override
    public void close() {
        live.values().forEach(ProcessSession::close);
    }
}
