package io.agentexec.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.File;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * The many-daemon cluster of scripts/cluster-up.sh as the benchmarks that need one drive it: its environment (its own
 * directory, schema and ports, the nodes run from this JVM's class path) and the scripts run with it.
 */
final class ClusterScripts {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path repo = Path.of("").toAbsolutePath();
    private final Map<String, String> env;

    /**
     * @param name     the cluster's name (its schema) and, under /tmp/aec-NAME, its directory unless
     *                 AGENTEXEC_CLUSTER_DIR says otherwise
     * @param pekkoPort the nodes' remoting base port (HTTP and metrics likewise), distinct per benchmark
     */
    ClusterScripts(String name, int pekkoPort, int httpPort, int metricsPort) {
        this.env = Map.of(
                "AGENTEXEC_CLUSTER_DIR", System.getenv().getOrDefault("AGENTEXEC_CLUSTER_DIR", "/tmp/aec-" + name),
                "AGENTEXEC_CLUSTER_NAME", name,
                "AGENTEXEC_CLUSTER_PEKKO_PORT", Integer.toString(pekkoPort),
                "AGENTEXEC_CLUSTER_HTTP_PORT", Integer.toString(httpPort),
                "AGENTEXEC_CLUSTER_METRICS_PORT", Integer.toString(metricsPort),
                "AGENTEXEC_CLUSTER_IMAGES", "agentexec/python:bookworm",
                // The tenant's request rate is not what a benchmark measures: refused callers retrying would hit it.
                "AGENTEXEC_TENANT_RPS", "100000",
                // The nodes run from this JVM's class path (the bench module depends on the node module).
                "AGENTEXEC_NODE_CLASSPATH", absoluteClassPath(),
                "JAVA_HOME", System.getProperty("java.home"));
    }

    /** Removes the cluster if this JVM ends before {@link #down}: a benchmark stopped half-way leaves nothing. */
    private final Thread downOnExit = new Thread(() -> run("scripts/cluster-down.sh"), "bench-cluster-down");

    /**
     * A fresh cluster: a previous run's leftovers removed first, then {@code cluster-up.sh UP_ARGS}; its state. The
     * cluster goes with this JVM unless {@link #down} removed it before.
     */
    JsonNode up(String... upArgs) {
        Runtime.getRuntime().addShutdownHook(downOnExit);
        run("scripts/cluster-down.sh");
        String[] command = new String[upArgs.length + 1];
        command[0] = "scripts/cluster-up.sh";
        System.arraycopy(upArgs, 0, command, 1, upArgs.length);
        return run(command);
    }

    /** Removes the cluster (every node, daemon, directory and the schema). */
    void down() {
        run("scripts/cluster-down.sh");
        Runtime.getRuntime().removeShutdownHook(downOnExit);
    }

    /** Runs a cluster script (path relative to the repository) with the cluster's environment; its JSON (or {}). */
    JsonNode run(String... command) {
        List<String> argv = new ArrayList<>(List.of("bash", repo.resolve(command[0]).toString()));
        argv.addAll(List.of(command).subList(1, command.length));
        ProcessBuilder pb = new ProcessBuilder(argv).directory(repo.toFile()).redirectError(ProcessBuilder.Redirect.INHERIT)
                .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
        pb.environment().putAll(env);
        try {
            Process p = pb.start();
            String out = new String(p.getInputStream().readAllBytes());
            if (p.waitFor() != 0) {
                throw new IllegalStateException(String.join(" ", command) + " exited " + p.exitValue());
            }
            return out.isBlank() ? JSON.createObjectNode() : JSON.readTree(out.strip());
        } catch (IOException e) {
            throw new IllegalStateException(String.join(" ", command) + ": " + e, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** This JVM's class path with absolute entries: the nodes run in directories of their own. */
    private static String absoluteClassPath() {
        return Arrays.stream(System.getProperty("java.class.path").split(File.pathSeparator))
                .map(e -> Path.of(e).toAbsolutePath().toString()).collect(Collectors.joining(File.pathSeparator));
    }
}
