package io.agentexec.sandbox.backend;

import io.agentexec.sandbox.agent.AgentChannel;
import io.agentexec.sandbox.model.Limits;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A sandbox whose agent is a child process of this JVM (bubblewrap, unsafe-local): the agent's
 * stdin and stdout carry the protocol, its stderr goes to the log.
 */
public final class ProcessSession implements BackendSession {
    private static final Logger log = LoggerFactory.getLogger(ProcessSession.class);

    private final String id;
    private final Process process;
    private final AgentChannel channel;
    private final String workspace;
    private final Runnable onClose;
    private volatile boolean closed;

    private ProcessSession(String id, Process process, String workspace, Runnable onClose) {
        this.id = id;
        this.process = process;
        this.workspace = workspace;
        this.onClose = onClose;
        this.channel = new AgentChannel(process.getOutputStream());
    }

    /** Starts {@code command} with an empty environment and waits for its agent's greeting. */
    public static ProcessSession start(String id, List<String> command, String workspace, Duration startTimeout,
                                       Runnable onClose) {
        ProcessBuilder builder = new ProcessBuilder(command);
        builder.environment().clear();
        Process process;
        try {
            process = builder.start();
        } catch (IOException e) {
            onClose.run();
            throw new SandboxUnavailableException("cannot start " + command.get(0) + ": " + e.getMessage(), e);
        }
        ProcessSession session = new ProcessSession(id, process, workspace, onClose);
        session.pump(process.getInputStream(), "agentexec-out-" + id);
        session.logStderr(process.getErrorStream(), "agentexec-err-" + id);
        try {
            session.channel.awaitHello(startTimeout);
        } catch (RuntimeException e) {
            session.close();
            throw new SandboxUnavailableException("sandbox " + id + " did not start: " + e.getMessage(), e);
        }
        return session;
    }

    private void pump(InputStream in, String threadName) {
        Thread t = new Thread(() -> {
            byte[] buf = new byte[65536];
            try {
                int n;
                while ((n = in.read(buf)) > 0) {
                    channel.feed(buf, 0, n);
                }
            } catch (IOException e) {
                // the process went away; reported below
            }
            channel.endOfStream("sandbox process exited" + (process.isAlive() ? "" : " with status " + process.exitValue()));
        }, threadName);
        t.setDaemon(true);
        t.start();
    }

    private void logStderr(InputStream err, String threadName) {
        Thread t = new Thread(() -> {
            try (BufferedReader r = new BufferedReader(new InputStreamReader(err, StandardCharsets.UTF_8))) {
                String line;
                while ((line = r.readLine()) != null) {
                    log.warn("sandbox {}: {}", id, line);
                }
            } catch (IOException ignored) {
                // stream closed with the process
            }
        }, threadName);
        t.setDaemon(true);
        t.start();
    }

    @Override
    public String id() {
        return id;
    }

    @Override
    public AgentChannel channel() {
        return channel;
    }

    @Override
    public String workspace() {
        return workspace;
    }

    @Override
    public boolean applyLimits(Limits limits) {
        return false;
    }

    public long pid() {
        return process.pid();
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        channel.close();
        try {
            if (!process.waitFor(1, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                process.waitFor(5, TimeUnit.SECONDS);
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        onClose.run();
    }
}
