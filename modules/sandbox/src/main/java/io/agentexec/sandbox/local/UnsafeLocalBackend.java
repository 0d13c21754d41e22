package io.agentexec.sandbox.local;

import io.agentexec.sandbox.agent.AgentBinary;
import io.agentexec.sandbox.backend.BackendSession;
import io.agentexec.sandbox.backend.ProcessSession;
import io.agentexec.sandbox.backend.SandboxBackend;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.backend.SessionSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Runs code as plain host processes in a temporary directory: NO isolation, no memory or pids limit.
 * Exists for development on machines with neither Docker nor bubblewrap, only behind the explicit
 * {@code unsafe-local} setting, and says so in the log every time it starts.
 */
public final class UnsafeLocalBackend implements SandboxBackend {
    private static final Logger log = LoggerFactory.getLogger(UnsafeLocalBackend.class);

    private final AgentBinary agent;
    private final Path runtimeDirectory;
    private final Path root;
    private final Duration startTimeout;

    private UnsafeLocalBackend(AgentBinary agent, Path runtimeDirectory, Path root, Duration startTimeout) {
        this.agent = agent;
        this.runtimeDirectory = runtimeDirectory;
        this.root = root;
        this.startTimeout = startTimeout;
    }

    public static UnsafeLocalBackend start(AgentBinary agent, Path runtimeDirectory, Duration startTimeout) {
        log.warn("SANDBOX BACKEND unsafe-local: code runs on this host WITHOUT isolation, network or resource "
                + "limits. Never use it for untrusted code.");
        try {
            agent.installIn(runtimeDirectory); // refuses a runtime directory that is not private before anything runs
            Path root = Files.createDirectories(runtimeDirectory.resolve("unsafe-local"));
            return new UnsafeLocalBackend(agent, runtimeDirectory, root, startTimeout);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Override
    public String name() {
        return "unsafe-local";
    }

    @Override
    public BackendSession open(SessionSpec spec) {
        Path agentPath;
        try {
            agentPath = agent.installIn(runtimeDirectory); // verified before each use
        } catch (RuntimeException e) {
            throw new SandboxUnavailableException("cannot start sandbox " + spec.sessionId() + ": " + e.getMessage(), e);
        }
        Path workspace;
        try {
            workspace = Files.createTempDirectory(root, spec.sessionId() + "-");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return ProcessSession.start(spec.sessionId(),
                List.of(agentPath.toString(), "serve", "--workspace", workspace.toString()),
                workspace.toString(), startTimeout, () -> deleteTree(workspace));
    }

    private static void deleteTree(Path dir) {
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // best effort
        }
    }

    @Override
    public void close() {
        // sessions end with their processes
    }
}
