package io.agentexec.node;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;

/**
 * A cluster made by {@code scripts/cluster-up.sh} and removed by {@code scripts/cluster-down.sh}, for tests:
 * its own directory, name (database schema) and ports, so that it never meets a developer's cluster or
 * another test's. Nodes run from this JVM's class path (the module's jar is not built yet when its tests
 * run). Every command's JSON is returned parsed; its stderr goes to {@link #log()}.
 */
final class LocalCluster implements AutoCloseable {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** A command that takes longer than this is stuck: up waits for the cluster itself at most 300 s. */
    private static final Duration COMMAND_TIMEOUT = Duration.ofMinutes(20);

    final Path repo;
    final Path dir;
    final String name;
    final int pekkoBase;
    final int httpBase;
    final int metricsBase;
    private final Map<String, String> env = new HashMap<>();
    private final Path log;
    private final Thread downOnExit;

    /** A command's outcome: exit code, its stdout parsed (null when it printed no JSON), its raw stdout. */
    record Result(int exitCode, JsonNode json, String stdout) {
    }

    LocalCluster(Map<String, String> extraEnvironment) throws IOException {
        repo = repoRoot();
        String id = UUID.randomUUID().toString().replace("-", "").substring(0, 8);
        // Short: the dockerds' sockets live below it.
        dir = Path.of("/tmp/aec-" + id);
        name = "test_" + id;
        int[] bases = freeBases(3, 8);
        pekkoBase = bases[0];
        httpBase = bases[1];
        metricsBase = bases[2];
        // In the module's build directory (the tests run in the module), kept for a look after a failure.
        Path target = Path.of("target");
        log = Files.isDirectory(target) ? target.resolve("cluster-" + id + ".log")
                : Files.createTempFile("agentexec-cluster-" + id, ".log");
        Files.writeString(log, "");
        env.put("AGENTEXEC_CLUSTER_DIR", dir.toString());
        env.put("AGENTEXEC_CLUSTER_NAME", name);
        env.put("AGENTEXEC_CLUSTER_PEKKO_PORT", Integer.toString(pekkoBase));
        env.put("AGENTEXEC_CLUSTER_HTTP_PORT", Integer.toString(httpBase));
        env.put("AGENTEXEC_CLUSTER_METRICS_PORT", Integer.toString(metricsBase));
        env.put("AGENTEXEC_NODE_CLASSPATH", System.getProperty("java.class.path"));
        env.put("JAVA_HOME", System.getProperty("java.home"));
        env.putAll(extraEnvironment);
        // Whatever happens to this JVM short of SIGKILL, the cluster goes with it.
        downOnExit = new Thread(() -> {
            try {
                run(List.of("scripts/cluster-down.sh"));
            } catch (RuntimeException ignored) {
                // nothing more to do on the way out
            }
        }, "local-cluster-down");
        Runtime.getRuntime().addShutdownHook(downOnExit);
    }

    String gatewayUrl() {
        return "http://127.0.0.1:" + httpBase;
    }

    Path log() {
        return log;
    }

    Result up(int workers) {
        return run(List.of("scripts/cluster-up.sh", Integer.toString(workers)));
    }

    Result addWorker() {
        return run(List.of("scripts/cluster-up.sh", "--add-worker"));
    }

    Result startWorker(int k) {
        return run(List.of("scripts/cluster-up.sh", "--worker", Integer.toString(k)));
    }

    Result status() {
        return run(List.of("scripts/cluster-up.sh", "--status"));
    }

    Result stopWorker(int k) {
        return run(List.of("scripts/cluster-down.sh", "--worker", Integer.toString(k)));
    }

    Result killWorker(int k) {
        return run(List.of("scripts/cluster-down.sh", "--kill-worker", Integer.toString(k)));
    }

    Result down() {
        return run(List.of("scripts/cluster-down.sh"));
    }

    /** Runs a script of the repository with this cluster's environment; stderr appended to the log. */
    Result run(List<String> command) {
        List<String> argv = new ArrayList<>();
        argv.add("bash");
        argv.add(repo.resolve(command.get(0)).toString());
        argv.addAll(command.subList(1, command.size()));
        ProcessBuilder pb = new ProcessBuilder(argv).directory(repo.toFile())
                .redirectError(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.environment().putAll(env);
        int exit;
        try {
            Files.writeString(log, "\n$ " + String.join(" ", command) + "\n", StandardCharsets.UTF_8,
                    java.nio.file.StandardOpenOption.APPEND);
            Path stdout = Files.createTempFile("agentexec-cluster-out", ".json");
            String out;
            try {
                pb.redirectOutput(stdout.toFile()).redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
                Process p = pb.start();
                if (!p.waitFor(COMMAND_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
                    p.destroyForcibly();
                    throw new AssertionError(command + " did not end within " + COMMAND_TIMEOUT + "\n" + logTail());
                }
                out = Files.readString(stdout);
                exit = p.exitValue();
            } finally {
                Files.deleteIfExists(stdout);
            }
            JsonNode json = null;
            String trimmed = out.strip();
            if (trimmed.startsWith("{")) {
                json = JSON.readTree(trimmed);
            }
            return new Result(exit, json, out);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    String logTail() {
        try {
            List<String> lines = Files.readAllLines(log);
            return String.join("\n", lines.subList(Math.max(0, lines.size() - 60), lines.size()));
        } catch (IOException e) {
            return "(no log: " + e + ")";
        }
    }

    /** Down (idempotent), whatever state the test left the cluster in. */
    @Override
    public void close() {
        try {
            Result r = down();
            if (r.exitCode() != 0) {
                System.err.println("scripts/cluster-down.sh exited " + r.exitCode() + ":\n" + logTail());
            }
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(downOnExit);
            } catch (IllegalStateException shuttingDown) {
                // the hook runs anyway
            }
        }
    }

    static Path repoRoot() {
        Path p = Path.of("").toAbsolutePath();
        while (p != null && !Files.exists(p.resolve("scripts/cluster-up.sh"))) {
            p = p.getParent();
        }
        if (p == null) {
            throw new IllegalStateException("no scripts/cluster-up.sh above " + Path.of("").toAbsolutePath());
        }
        return p;
    }

    /**
     * {@code count} base ports, each followed by {@code span - 1} free ports, none overlapping, below the
     * ephemeral range (so that no connection's local port takes one meanwhile).
     */
    private static int[] freeBases(int count, int span) {
        int[] bases = new int[count];
        List<Integer> taken = new ArrayList<>();
        for (int i = 0; i < count; i++) {
            for (int attempt = 0; ; attempt++) {
                if (attempt > 200) {
                    throw new IllegalStateException("no " + span + " free consecutive ports found");
                }
                int base = 20000 + ThreadLocalRandom.current().nextInt(12000 / span) * span;
                if (taken.contains(base) || !allFree(base, span)) {
                    continue;
                }
                taken.add(base);
                bases[i] = base;
                break;
            }
        }
        return bases;
    }

    private static boolean allFree(int base, int span) {
        for (int port = base; port < base + span; port++) {
            try (ServerSocket s = new ServerSocket()) {
                s.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), port));
            } catch (IOException inUse) {
                return false;
            }
        }
        return true;
    }
}
