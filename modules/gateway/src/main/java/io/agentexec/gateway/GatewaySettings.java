package io.agentexec.gateway;

import com.typesafe.config.Config;
import io.agentexec.gateway.tenant.TenantPolicy;
import io.agentexec.sandbox.policy.ExecutionPolicy;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;

/** Everything the gateway reads from {@code agentexec.gateway} (see reference.conf). */
public record GatewaySettings(
        String host,
        int port,
        Optional<Integer> grpcPort,
        BackendKind backend,
        AuthMode authMode,
        Path keysFile,
        boolean generateFirstKey,
        String firstTenant,
        Duration keysRefresh,
        Path firstKeyFile,
        TenantPolicy tenantDefaults,
        long maxBodyBytes,
        long maxFileReadBytes,
        Duration heartbeatInterval,
        Duration admissionGrace,
        Duration sseKeepAlive,
        Duration executionRetention,
        int replayChunks,
        int engineSlots,
        int engineQueue,
        Duration drainTimeout,
        Duration askTimeout,
        QuotaSettings quotas,
        Backoff visibilityPoll,
        ConnectionSettings connections,
        MetricsSettings metrics) {

    public enum BackendKind { CLUSTER, ENGINE }

    public enum AuthMode { API_KEYS, NONE }

    /**
     * The cluster-wide live-sandbox quota: a slot whose sandbox does not exist {@code reservationTimeout}
     * after it was reserved is freed (its gateway node died mid-create); a tenant's slots are
     * snapshotted every {@code snapshotEvery} events.
     */
    public record QuotaSettings(Duration reservationTimeout, int snapshotEvery) {
        public QuotaSettings {
            Objects.requireNonNull(reservationTimeout, "reservationTimeout");
            if (snapshotEvery < 1) {
                throw new IllegalArgumentException("agentexec.gateway.quotas.snapshot-every must be at least 1, got "
                        + snapshotEvery);
            }
        }
    }

    /**
     * What a connection must keep to: the node holds at most {@code max} connections, one client
     * address at most {@code maxPerClient} (0: no per-client limit); a request's line and headers must
     * arrive within {@code headerTimeout} and its body within {@code bodyTimeout} after them; a
     * connection with nothing to send either way is closed after {@code idleTimeout}; HTTP/2 pings every
     * {@code http2PingInterval} keep a connection whose streams are quiet (a long gRPC call) from looking idle.
     */
    public record ConnectionSettings(int max, int maxPerClient, Duration headerTimeout, Duration bodyTimeout,
                                     Duration idleTimeout, Duration http2PingInterval) {
        public ConnectionSettings {
            if (max < 1) {
                throw new IllegalArgumentException("agentexec.gateway.connections.max must be at least 1, got " + max);
            }
            if (maxPerClient < 0) {
                throw new IllegalArgumentException("agentexec.gateway.connections.max-per-client must be 0 (no limit) "
                        + "or more, got " + maxPerClient);
            }
            positive("header-timeout", headerTimeout);
            positive("body-timeout", bodyTimeout);
            positive("idle-timeout", idleTimeout);
            positive("http2-ping-interval", http2PingInterval);
            if (http2PingInterval.compareTo(idleTimeout) >= 0) {
                throw new IllegalArgumentException("agentexec.gateway.connections.http2-ping-interval (" + http2PingInterval
                        + ") must be shorter than idle-timeout (" + idleTimeout + "), or long gRPC calls are cut");
            }
        }

        private static void positive(String key, Duration value) {
            if (value.isNegative() || value.isZero()) {
                throw new IllegalArgumentException("agentexec.gateway.connections." + key + " must be positive, got " + value);
            }
        }
    }

    /**
     * Where Prometheus reads the metrics, which name workers (their cluster addresses) and images: a
     * listener of their own on {@code host}:{@code port} (empty: none), and with {@code token} set a
     * bearer token that listener then requires and that alone opens {@code /metrics} on the API port.
     */
    public record MetricsSettings(String host, Optional<Integer> port, Optional<String> token) {
        /** Long enough not to be guessed; operators generate it. */
        private static final int MIN_TOKEN_LENGTH = 16;

        public MetricsSettings {
            Objects.requireNonNull(host, "host");
            Objects.requireNonNull(port, "port");
            Objects.requireNonNull(token, "token");
            token.ifPresent(t -> {
                if (t.length() < MIN_TOKEN_LENGTH || t.chars().anyMatch(ch -> ch <= ' ' || ch > '~')) {
                    throw new IllegalArgumentException("agentexec.gateway.metrics.token must be at least " + MIN_TOKEN_LENGTH
                            + " printable characters without spaces (got " + t.length() + ")");
                }
            });
        }
    }

    /** A pause that doubles from {@code min} up to {@code max}. */
    public record Backoff(Duration min, Duration max) {
        public Backoff {
            if (min.isNegative() || min.isZero() || max.compareTo(min) < 0) {
                throw new IllegalArgumentException("a backoff needs 0 < min <= max, got " + min + " and " + max);
            }
        }
    }

    public GatewaySettings {
        Objects.requireNonNull(host, "host");
        Objects.requireNonNull(connections, "connections");
        Objects.requireNonNull(metrics, "metrics");
        // what keeps a long answer going must come more often than an idle connection is closed
        if (heartbeatInterval.compareTo(connections.idleTimeout()) >= 0) {
            throw new IllegalArgumentException("agentexec.gateway.http.heartbeat-interval (" + heartbeatInterval
                    + ") must be shorter than agentexec.gateway.connections.idle-timeout (" + connections.idleTimeout()
                    + "), or long synchronous runs are cut");
        }
        if (sseKeepAlive.compareTo(connections.idleTimeout()) >= 0) {
            throw new IllegalArgumentException("agentexec.gateway.http.sse-keepalive (" + sseKeepAlive
                    + ") must be shorter than agentexec.gateway.connections.idle-timeout (" + connections.idleTimeout()
                    + "), or quiet event streams are cut");
        }
    }

    public static GatewaySettings fromConfig(Config root) {
        Config c = root.getConfig("agentexec.gateway");
        int grpcPort = c.getInt("grpc.port");
        return new GatewaySettings(
                c.getString("host"),
                c.getInt("port"),
                grpcPort < 0 ? Optional.empty() : Optional.of(grpcPort),
                BackendKind.valueOf(c.getString("backend").trim().toUpperCase(Locale.ROOT)),
                AuthMode.valueOf(c.getString("auth.mode").trim().toUpperCase(Locale.ROOT).replace('-', '_')),
                Path.of(c.getString("auth.keys-file")),
                c.getBoolean("auth.generate-first-key"),
                c.getString("auth.first-tenant"),
                c.getDuration("auth.refresh-interval"),
                Path.of(c.getString("auth.first-key-file")),
                TenantPolicy.fromConfig(c.getConfig("tenant-defaults"), ExecutionPolicy.fromConfig(root)),
                c.getBytes("http.max-body-bytes"),
                c.getBytes("http.max-file-read-bytes"),
                c.getDuration("http.heartbeat-interval"),
                c.getDuration("http.admission-grace"),
                c.getDuration("http.sse-keepalive"),
                c.getDuration("executions.retention"),
                c.getInt("executions.replay-chunks"),
                c.getInt("engine.slots"),
                c.getInt("engine.queue"),
                c.getDuration("shutdown.drain-timeout"),
                c.getDuration("ask-timeout"),
                new QuotaSettings(c.getDuration("quotas.reservation-timeout"), c.getInt("quotas.snapshot-every")),
                new Backoff(c.getDuration("executions.visibility-poll.min"), c.getDuration("executions.visibility-poll.max")),
                new ConnectionSettings(c.getInt("connections.max"), c.getInt("connections.max-per-client"),
                        c.getDuration("connections.header-timeout"), c.getDuration("connections.body-timeout"),
                        c.getDuration("connections.idle-timeout"), c.getDuration("connections.http2-ping-interval")),
                new MetricsSettings(c.getString("metrics.host"),
                        c.getInt("metrics.port") < 0 ? Optional.empty() : Optional.of(c.getInt("metrics.port")),
                        c.getString("metrics.token").isBlank() ? Optional.empty() : Optional.of(c.getString("metrics.token"))));
    }
}
