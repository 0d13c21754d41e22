package io.agentexec.node;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
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
 * run). Every command's JSON is returned parsed (the latest cluster state is kept, {@link #state()}); its
 * stderr goes to {@link #log()}.
 *
 * <p>Made for the operations tests as much as for the scripts' own: a rolling restart is
 * {@code for (int k : workerIndexes()) { stopWorker(k); startWorker(k); }} (SIGTERM, then a replacement on the same
 * daemon; or {@link #addWorker()} for one on a new daemon) while a load runs through {@link #post}; a cluster-wide
 * keys test makes the cluster with {@code AGENTEXEC_AUTH_MODE=api-keys} in its environment, runs the CLI with
 * {@link #cli} and calls every node's API with {@link #call(int, String, String, String, Map)}
 * ({@link #nodeIndexes()}: the gateway is 0).
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

    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(5)).build();
    /** The cluster as the last command that printed it left it; null before up. */
    private volatile JsonNode state;

    /** A command's outcome: exit code, its stdout parsed (null when it printed no JSON), its raw stdout. */
    record Result(int exitCode, JsonNode json, String stdout) {
    }

    /** An HTTP reply: status, body parsed (null when it is no JSON), raw body. */
    record Reply(int status, JsonNode json, String body) {
        /** The error document's code ({@code {"error":{"code":...}}}), or "" when there is none. */
        String errorCode() {
            return json != null && json.has("error") ? json.get("error").path("code").asText() : "";
        }
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
        return nodeUrl(0);
    }

    /** Node i's HTTP/gRPC URL (the gateway is 0, worker K is K: the scripts' deterministic ports). */
    String nodeUrl(int index) {
        return "http://127.0.0.1:" + (httpBase + index);
    }

    /** The latest state a command printed (see scripts/cluster-up.sh), or null before up. */
    JsonNode state() {
        return state;
    }

    /** Indexes of the nodes running in the latest state: 0 (the gateway) and every live worker. */
    List<Integer> nodeIndexes() {
        List<Integer> nodes = new ArrayList<>(List.of(0));
        for (JsonNode w : state.get("workers")) {
            if (w.get("alive").asBoolean()) {
                nodes.add(w.get("index").asInt());
            }
        }
        return nodes;
    }

    /** Indexes of the live workers in the latest state (a rolling restart walks these). */
    List<Integer> workerIndexes() {
        List<Integer> nodes = nodeIndexes();
        return nodes.subList(1, nodes.size());
    }

    /** Worker K in the latest state. */
    JsonNode worker(int index) {
        for (JsonNode w : state.get("workers")) {
            if (w.get("index").asInt() == index) {
                return w;
            }
        }
        throw new AssertionError("no worker " + index + " in " + state);
    }

    /** Worker K's DOCKER_HOST (unix://.../docker.sock), for {@code docker -H}. */
    String dockerHost(int index) {
        return worker(index).get("dockerHost").asText();
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

    /**
     * The node's command line ({@code bin/agentexec ARGS}: the CLI, e.g. a tenant/key command) run from this JVM's
     * class path against the cluster's database (its schema), as an operator on the machine would.
     */
    Result cli(List<String> args) {
        List<String> argv = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp", System.getProperty("java.class.path"), "io.agentexec.node.AgentexecMain"));
        argv.addAll(args);
        Map<String, String> db = Map.of("AGENTEXEC_DB_DIALECT", "postgresql",
                "AGENTEXEC_DB_URL", state.get("databaseUrl").asText(), "AGENTEXEC_DB_USER", "agentexec",
                "AGENTEXEC_DB_PASSWORD", "agentexec", "AGENTEXEC_DB_SCHEMA", state.get("schema").asText());
        return exec(argv, db, List.of("agentexec", String.join(" ", args)));
    }

    /** POST a JSON body to the gateway. */
    Reply post(String path, String json) {
        return call(0, "POST", path, json, Map.of());
    }

    Reply get(String path) {
        return call(0, "GET", path, null, Map.of());
    }

    Reply delete(String path) {
        return call(0, "DELETE", path, null, Map.of());
    }

    /** One HTTP request to node i's API (a run may take minutes when a worker is lost meanwhile). */
    Reply call(int node, String method, String path, String json, Map<String, String> headers) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(nodeUrl(node) + path)).timeout(Duration.ofMinutes(4))
                .method(method, json == null ? HttpRequest.BodyPublishers.noBody() : HttpRequest.BodyPublishers.ofString(json));
        if (json != null) {
            b.header("Content-Type", "application/json");
        }
        headers.forEach(b::header);
        try {
            HttpResponse<String> r = http.send(b.build(), HttpResponse.BodyHandlers.ofString());
            JsonNode parsed = null;
            try {
                parsed = r.body().isBlank() ? null : JSON.readTree(r.body());
            } catch (IOException notJson) {
                // kept raw in body
            }
            return new Reply(r.statusCode(), parsed, r.body());
        } catch (IOException e) {
            throw new UncheckedIOException(method + " " + nodeUrl(node) + path, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    /** Waits (bounded) until the gateway's /readyz says {@code workers} workers are reachable. */
    void awaitReady(int workers, Duration within) {
        String want = workers + " worker(s) reachable";
        long deadline = System.nanoTime() + within.toNanos();
        String last = "";
        while (System.nanoTime() < deadline) {
            try {
                Reply r = get("/readyz");
                last = r.body();
                if (r.status() == 200 && r.json() != null && r.json().path("detail").asText().startsWith(want)) {
                    return;
                }
            } catch (UncheckedIOException refused) {
                last = refused.getCause().toString();
            }
            try {
                Thread.sleep(500);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException(e);
            }
        }
        throw new AssertionError("the gateway's /readyz never said '" + want + "' within " + within + ": " + last);
    }

    /** Runs a script of the repository with this cluster's environment; stderr appended to the log. */
    Result run(List<String> command) {
        List<String> argv = new ArrayList<>();
        argv.add("bash");
        argv.add(repo.resolve(command.get(0)).toString());
        argv.addAll(command.subList(1, command.size()));
        Result r = exec(argv, Map.of(), command);
        JsonNode printed = r.json() == null ? null : r.json().has("workers") ? r.json() : r.json().get("state");
        if (printed != null && printed.has("workers")) {
            state = printed;
        }
        return r;
    }

    private Result exec(List<String> argv, Map<String, String> extra, List<String> command) {
        ProcessBuilder pb = new ProcessBuilder(argv).directory(repo.toFile())
                .redirectError(ProcessBuilder.Redirect.appendTo(log.toFile()));
        pb.environment().putAll(env);
        pb.environment().putAll(extra);
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
