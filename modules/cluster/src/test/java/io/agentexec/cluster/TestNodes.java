package io.agentexec.cluster;

import com.typesafe.config.Config;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.worker.WorkerLoad;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.Limits;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Path;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.UUID;
import java.util.function.BooleanSupplier;
import io.agentexec.testkit.Await;

/** Nodes on 127.0.0.1 with free ports, their journal in H2 (a temp dir) or in the local PostgreSQL. */
final class TestNodes {
    static final String PG_URL = "jdbc:postgresql://127.0.0.1:5432/agentexec";
    static final String PG_USER = "agentexec";
    static final String PG_PASSWORD = "agentexec";
    static final Duration WAIT = Await.WAIT;

    private TestNodes() {
    }

    static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    static String address(int port) {
        return "pekko://agentexec@127.0.0.1:" + port;
    }

    /** Settings every test node shares: fast failure detection and downing, small warm pool, fast retries. */
    static String common(int port, List<Integer> seedPorts, String roles) {
        return String.format(Locale.ROOT, """
                pekko.remote.artery.canonical.hostname = "127.0.0.1"
                pekko.remote.artery.canonical.port = %d
                agentexec.cluster.roles = "%s"
                agentexec.cluster.seed-nodes = "%s"
                pekko.cluster.split-brain-resolver.stable-after = 2s
                pekko.cluster.failure-detector.heartbeat-interval = 500ms
                pekko.cluster.failure-detector.acceptable-heartbeat-pause = 2s
                pekko.loglevel = WARNING
                agentexec.sandbox.docker.warm-pool.size = 1
                agentexec.cluster.execution.retry-backoff.min = 200ms
                agentexec.cluster.execution.retry-backoff.max = 1s
                # some tests hold a run open for minutes to cancel it: above the operator's default ceiling
                agentexec.policy.max-limits.timeout = 1h
                """, port, roles, String.join(",", seedPorts.stream().map(TestNodes::address).toList()));
    }

    static String h2(Path directory) {
        return "agentexec.cluster.persistence { dialect = h2, url = \"jdbc:h2:file:" + directory.resolve("journal")
                + ";DATABASE_TO_UPPER=false\" }\n";
    }

    static String postgres(String schema) {
        return "agentexec.cluster.persistence { dialect = postgresql, url = \"" + PG_URL + "\", user = " + PG_USER
                + ", password = " + PG_PASSWORD + ", schema = " + schema + " }\n";
    }

    static String newSchema() {
        return "agentexec_test_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
    }

    static void dropSchema(String schema) throws SQLException {
        try (var connection = DriverManager.getConnection(PG_URL, PG_USER, PG_PASSWORD);
             var statement = connection.createStatement()) {
            statement.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
        }
    }

    static Config config(String text) {
        return ClusterConfig.load(text, List.of());
    }

    static AgentexecCluster start(String text) {
        return AgentexecCluster.start(config(text));
    }

    /** {@link Await#value}, under the short name the cluster's tests import statically. */
    static <T> T await(java.util.concurrent.CompletionStage<T> stage) {
        return Await.value(stage);
    }

    /** {@link Await#until}, under the name the cluster's tests import statically. */
    static void eventually(String what, BooleanSupplier condition) {
        Await.until(what, condition);
    }

    static void awaitWorkers(AgentexecCluster node, int count) {
        eventually(count + " workers registered", () -> await(node.workers()).size() == count
                && await(node.workers()).stream().allMatch(w -> w.slots() > 0));
    }

    static int sessionsOn(AgentexecCluster node) {
        return await(node.workers()).stream().mapToInt(WorkerLoad::sessions).sum();
    }

    static ExecutionRequest python(String code, Limits limits) {
        return ExecutionRequest.of("python", code, limits);
    }

    static ExecutionOutcome run(AgentexecCluster node, Optional<String> sandbox, String code, Limits limits) {
        return await(node.execute(sandbox, python(code, limits), "k-" + UUID.randomUUID()));
    }

    static ExecutionOutcome.Completed completed(ExecutionOutcome reply) {
        if (reply instanceof ExecutionOutcome.Completed c) {
            return c;
        }
        throw new AssertionError("expected a completed execution, got " + reply);
    }
}
