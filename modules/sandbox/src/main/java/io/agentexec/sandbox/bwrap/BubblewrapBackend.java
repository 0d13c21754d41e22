package io.agentexec.sandbox.bwrap;

import io.agentexec.sandbox.agent.AgentBinary;
import io.agentexec.sandbox.agent.RuntimeDirectory;
import io.agentexec.sandbox.backend.BackendSession;
import io.agentexec.sandbox.backend.ProcessSession;
import io.agentexec.sandbox.backend.SandboxBackend;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.backend.SessionSpec;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Sandboxes as bubblewrap namespaces, for machines without Docker: every namespace unshared (so no network), a
 * read-only root with read-only system directories and size-bounded tmpfs workspace, /tmp and /dev/shm, a new
 * session, death with the JVM. The agent is the namespace's pid 1 ({@code --as-pid-1}: bwrap's own init would be a
 * dumpable process of the sandbox's uid holding the controller's pipes, which user code could open through
 * /proc/1/fd), installs the seccomp filter on itself ({@code serve --seccomp}), and is copied in through an fd. When
 * this JVM is root, the launcher drops to {@code host-user} before bwrap starts, so that the sandbox's user
 * namespace maps onto that unprivileged host uid, not onto root; {@code --disable-userns} (bwrap 0.8+) forbids
 * nested user namespaces. Memory, pids and CPU are held by cgroups (v1 or v2) where the machine allows them.
 */
public final class BubblewrapBackend implements SandboxBackend {
    private static final Logger log = LoggerFactory.getLogger(BubblewrapBackend.class);
    private static final String AGENT_INSIDE = "/.agentexec/agentexec-agent";
    /** Replaced by the launcher with the number of the fd it opened on the agent binary (see launch --self-fd). */
    private static final String AGENT_FD = "@agentexec-agent-fd@";
    /** Every sandbox's open-file limit (the agent and its runs). */
    private static final String NOFILE = "nofile=4096";
    private static final int[] DISABLE_USERNS_SINCE = {0, 8, 0};
    private static final Pattern VERSION = Pattern.compile("(\\d+)\\.(\\d+)\\.(\\d+)");

    private final BubblewrapSettings settings;
    private final AgentBinary agent;
    private final Map<String, ProcessSession> live = new ConcurrentHashMap<>();
    private final Optional<CgroupDriver> cgroups;
    private final boolean disableUserns;
    private final Optional<String> dropTo;

    private BubblewrapBackend(BubblewrapSettings settings, AgentBinary agent, Optional<CgroupDriver> cgroups,
                              boolean disableUserns, Optional<String> dropTo) {
        this.settings = settings;
        this.agent = agent;
        this.cgroups = cgroups;
        this.disableUserns = disableUserns;
        this.dropTo = dropTo;
    }

    /** Attempts of the namespace check before bwrap is taken for unusable here. */
    private static final int CHECK_ATTEMPTS = 3;
    /** Pause between them: a host out of processes for a moment (a fork bomb's remains being reaped) recovers. */
    private static final long CHECK_PAUSE_MILLIS = 300;

    /** True when bwrap is installed and can create all namespaces here. */
    public static boolean available(String executable) {
        return unavailableBecause(executable).isEmpty();
    }

    /**
     * Why bwrap cannot create all namespaces here (its own output, or why it could not run), empty when it can. A
     * failed check is repeated a few times: it failed once in a test run right after a fork bomb's sandbox was killed
     * (the host short of processes while they were reaped), and a transient failure must not take the backend away.
     */
    static Optional<String> unavailableBecause(String executable) {
        String why = "";
        for (int attempt = 1; attempt <= CHECK_ATTEMPTS; attempt++) {
            try {
                Process p = new ProcessBuilder(executable, "--unshare-all", "--ro-bind", "/", "/", "--", "/bin/true")
                        .redirectErrorStream(true).start();
                String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
                if (!p.waitFor(10, TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    why = "it did not finish within 10 s";
                } else if (p.exitValue() == 0) {
                    return Optional.empty();
                } else {
                    why = "exit " + p.exitValue() + (output.isEmpty() ? "" : ": " + output);
                }
                if (attempt < CHECK_ATTEMPTS) {
                    Thread.sleep(CHECK_PAUSE_MILLIS);
                }
            } catch (IOException e) {
                return Optional.of(e.getMessage()); // not installed: no point in asking again
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return Optional.of("interrupted");
            }
        }
        return Optional.of(why);
    }

    public static BubblewrapBackend start(BubblewrapSettings settings, AgentBinary agent) {
        Optional<String> unavailable = unavailableBecause(settings.executable());
        if (unavailable.isPresent()) {
            throw new SandboxUnavailableException("bubblewrap (" + settings.executable()
                    + ") is missing or cannot create namespaces here (apt-get install bubblewrap): " + unavailable.get());
        }
        Path agentPath = agent.installIn(settings.runtimeDirectory());
        Optional<String> dropTo = RuntimeDirectory.effectiveUid() == 0 ? Optional.of(settings.hostUser()) : Optional.empty();
        if (dropTo.isEmpty()) {
            log.info("this JVM is not root: bubblewrap sandboxes map onto its own uid (host-user applies to root only)");
        }
        String version = bwrapVersion(settings.executable());
        boolean disableUserns = atLeast(version, DISABLE_USERNS_SINCE);
        if (!disableUserns) {
            log.warn("{} has no --disable-userns (0.8.0 or later has): nested user namespaces are refused by the "
                    + "seccomp filter alone", version);
        }
        probe(settings, agentPath, dropTo, disableUserns);
        Optional<CgroupDriver> cgroups = CgroupDriver.detect(settings.cgroupRoot(), settings.cgroupParent());
        // A live sandbox's group is joined within the agent start timeout of its creation; only older empty ones are stale.
        cgroups.ifPresentOrElse(d -> d.removeStale(settings.agentStartTimeout()), () -> log.warn("no writable cgroup v1 memory/pids "
                + "controllers or delegated cgroup v2 under {}: bubblewrap sandboxes get no memory, pids or CPU limit "
                + "beyond rlimits", settings.cgroupRoot()));
        cgroups.ifPresent(d -> log.info("bubblewrap sandboxes get cgroups ({}: {})", d.getClass().getSimpleName(), d.controllers()));
        return new BubblewrapBackend(settings, agent, cgroups, disableUserns, dropTo);
    }

    /** The first line of {@code bwrap --version}, e.g. "bubblewrap 0.8.0". */
    private static String bwrapVersion(String executable) {
        try {
            Process p = new ProcessBuilder(executable, "--version").redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            p.waitFor(10, TimeUnit.SECONDS);
            return out.lines().findFirst().orElse(executable + " (no version)");
        } catch (IOException e) {
            return executable + " (no version: " + e.getMessage() + ")";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return executable + " (no version)";
        }
    }

    static boolean atLeast(String version, int[] wanted) {
        Matcher m = VERSION.matcher(version);
        if (!m.find()) {
            return false;
        }
        for (int i = 0; i < wanted.length; i++) {
            int part = Integer.parseInt(m.group(i + 1));
            if (part != wanted[i]) {
                return part > wanted[i];
            }
        }
        return true;
    }

    /** Fails now, with the reason, where the hardened command cannot start (no unprivileged user namespaces...). */
    private static void probe(BubblewrapSettings settings, Path agentPath, Optional<String> dropTo, boolean disableUserns) {
        List<String> command = new ArrayList<>(List.of(agentPath.toString(), "launch"));
        dropTo.ifPresent(u -> command.addAll(List.of("--user", u)));
        command.addAll(List.of("--", settings.executable(), "--unshare-all", "--unshare-user", "--as-pid-1"));
        if (disableUserns) {
            command.add("--disable-userns");
        }
        command.addAll(List.of("--ro-bind", "/", "/", "--", "/bin/true"));
        String output;
        int status;
        try {
            Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
            output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            status = p.waitFor(30, TimeUnit.SECONDS) ? p.exitValue() : -1;
        } catch (IOException e) {
            output = e.getMessage();
            status = -1;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new SandboxUnavailableException("interrupted while probing bubblewrap");
        }
        if (status != 0) {
            throw new SandboxUnavailableException("bubblewrap cannot start a sandbox " + dropTo.map(u -> "as host user " + u
                    + " (agentexec.sandbox.bwrap.host-user) ").orElse("") + "with an unprivileged user namespace: "
                    + output + " (check kernel.unprivileged_userns_clone, user.max_user_namespaces and AppArmor's "
                    + "userns restriction)");
        }
    }

    @Override
    public String name() {
        return "bwrap";
    }

    public boolean cgroupsAvailable() {
        return cgroups.isPresent();
    }

    @Override
    public BackendSession open(SessionSpec spec) {
        Path agentPath;
        try {
            agentPath = agent.installIn(settings.runtimeDirectory()); // verified before each use
        } catch (RuntimeException e) {
            throw new SandboxUnavailableException("cannot start sandbox " + spec.sessionId() + ": " + e.getMessage(), e);
        }
        Optional<SandboxCgroup> cgroup = cgroups.flatMap(d -> d.create(spec.sessionId(), spec.limits()));
        List<String> command = new ArrayList<>();
        command.add(agentPath.toString());
        command.add("launch");
        cgroup.ifPresent(g -> g.groups().forEach(dir -> command.addAll(List.of("--cgroup", dir.toString()))));
        command.addAll(List.of("--limit", NOFILE, "--self-fd", AGENT_FD));
        dropTo.ifPresent(u -> command.addAll(List.of("--user", u)));
        command.add("--");
        command.add(settings.executable());
        command.addAll(List.of("--unshare-all", "--unshare-user", "--as-pid-1", "--die-with-parent", "--new-session",
                "--hostname", "sandbox"));
        if (disableUserns) {
            command.add("--disable-userns");
        }
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
                "--size", Long.toString(settings.shmSizeBytes()), "--tmpfs", "/dev/shm",
                "--size", Long.toString(settings.tmpSizeBytes()), "--tmpfs", "/tmp",
                "--size", Long.toString(spec.limits().workspaceBytes()), "--perms", "0700", "--tmpfs", settings.workspace(),
                // A copy from the launcher's fd: the runtime directory is private to the JVM's user.
                "--perms", "0555", "--file", AGENT_FD, AGENT_INSIDE));
        cgroup.ifPresent(g -> g.binds().forEach((host, inside) -> command.addAll(List.of("--ro-bind", host.toString(), inside))));
        // Last: the mount points above are made in the root tmpfs, which then turns read-only (/dev's too).
        command.addAll(List.of("--remount-ro", "/dev", "--remount-ro", "/"));
        command.addAll(List.of("--chdir", settings.workspace(), "--clearenv",
                "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin",
                AGENT_INSIDE, "serve", "--contained", "--seccomp", "--workspace", settings.workspace()));
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
