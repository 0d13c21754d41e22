package io.agentexec.cluster;

import com.typesafe.config.Config;
import io.agentexec.cluster.persistence.Dialect;
import io.agentexec.cluster.persistence.ExecutionRetention;
import io.agentexec.cluster.persistence.H2Housekeeping;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.KeyStoreException;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;

/** Everything the cluster reads from {@code agentexec.cluster} (see this module's reference.conf). */
public record ClusterSettings(
        String systemName,
        Set<NodeRole> roles,
        Formation formation,
        List<String> seedNodes,
        Duration askTimeout,
        WorkerSettings worker,
        ExecutionSettings execution,
        SandboxSettings sandbox,
        PersistenceSettings persistence,
        H2Housekeeping.Settings h2Housekeeping,
        ExecutionRetention.Settings executionRetention,
        OutputSettings output,
        FilesSettings files,
        TlsSettings tls,
        AdminSettings admin,
        String nodeName,
        ReaperSettings reaper) {

    /** A node name: a host name's characters, as it labels metrics and containers. */
    private static final java.util.regex.Pattern NODE_NAME = java.util.regex.Pattern.compile("[A-Za-z0-9][A-Za-z0-9._:-]{0,252}");

    /**
     * The orphan reaper by cluster membership (see reference.conf): a sweep at least every {@code interval}; a
     * registered worker not a member within {@code joinGrace} of its start is taken for gone.
     */
    public record ReaperSettings(Duration interval, Duration joinGrace) {
        public ReaperSettings {
            if (interval.isNegative() || interval.isZero()) {
                throw new IllegalArgumentException("agentexec.cluster.reaper.interval must be positive, got " + interval);
            }
            if (joinGrace.isNegative() || joinGrace.isZero()) {
                throw new IllegalArgumentException("agentexec.cluster.reaper.join-grace must be positive, got " + joinGrace);
            }
        }
    }

    /** How a node finds the others: configured seed nodes (none: it joins itself), or Kubernetes bootstrap. */
    public enum Formation {
        SEED_NODES, KUBERNETES_BOOTSTRAP;

        static Formation parse(String text) {
            return switch (text.trim().toLowerCase(Locale.ROOT)) {
                case "seed-nodes" -> SEED_NODES;
                case "kubernetes-bootstrap" -> KUBERNETES_BOOTSTRAP;
                default -> throw new IllegalArgumentException(
                        "unknown agentexec.cluster.formation '" + text + "' (seed-nodes, kubernetes-bootstrap)");
            };
        }
    }

    public record Backoff(Duration min, Duration max, double randomFactor) {
        static Backoff fromConfig(Config c) {
            return new Backoff(c.getDuration("min"), c.getDuration("max"), c.getDouble("random-factor"));
        }

        /** The delay before retry number {@code n} (1-based), without the random part. */
        public Duration delayBefore(int n) {
            long millis = min.toMillis() << Math.min(Math.max(n - 1, 0), 20);
            return Duration.ofMillis(Math.min(millis, max.toMillis()));
        }
    }

    /**
     * @param cancelRetryInterval a cancel is repeated this often until the job ends: one that lands
     *                            between two blocks (or before the first starts) still stops the run
     * @param fileThreads         threads of the file operations' own pool: runs never wait for them
     * @param fileQueue           file operations waiting for one of those threads; more are refused at once
     * @param fileOpTimeout       a file operation running longer marks its sandbox's container broken
     * @param proceedTimeout      a job accepted on the condition that its sender persists its start and says
     *                            {@code Proceed} is dropped (it never ran) when no word comes within this
     * @param drainTimeout        how long a draining worker waits for its running executions to finish and its
     *                            sandboxes to move before its node leaves anyway
     * @param handover            how a draining worker's sandboxes move to another worker
     */
    public record WorkerSettings(int slots, int queueCapacity, Duration loadReportInterval,
                                 Duration orphanSessionTimeout, Backoff restartBackoff, Duration cancelRetryInterval,
                                 int fileThreads, int fileQueue, Duration fileOpTimeout, Duration proceedTimeout,
                                 Duration drainTimeout, HandoverSettings handover) {
        public WorkerSettings {
            if (drainTimeout.isNegative() || drainTimeout.isZero()) {
                throw new IllegalArgumentException("agentexec.cluster.worker.drain-timeout must be positive, got " + drainTimeout);
            }
            Objects.requireNonNull(handover, "handover");
            if (proceedTimeout.isNegative() || proceedTimeout.isZero()) {
                throw new IllegalArgumentException("agentexec.cluster.worker.proceed-timeout must be positive, got " + proceedTimeout);
            }
            if (fileThreads < 1) {
                throw new IllegalArgumentException("agentexec.cluster.worker.file-threads must be at least 1, got " + fileThreads);
            }
            if (fileQueue < 0) {
                throw new IllegalArgumentException("agentexec.cluster.worker.file-queue must not be negative, got " + fileQueue);
            }
            if (fileOpTimeout.isNegative() || fileOpTimeout.isZero()) {
                throw new IllegalArgumentException("agentexec.cluster.worker.file-op-timeout must be positive, got " + fileOpTimeout);
            }
            if (slots < 1) {
                throw new IllegalArgumentException("agentexec.cluster.worker.slots must be at least 1, got " + slots);
            }
            if (queueCapacity < 0) {
                throw new IllegalArgumentException("agentexec.cluster.worker.queue must not be negative, got " + queueCapacity);
            }
        }
    }

    /**
     * A sandbox's move off a draining worker: its workspace packed there (tar, inside the sandbox), carried through the
     * cluster in chunks and unpacked in a fresh container on another worker.
     *
     * @param threads         moves packed or unpacked at once on one worker (each holds its archive in memory)
     * @param chunkBytes      bytes per message carrying the archive (under remoting's maximum-frame-size)
     * @param archiveOverhead what tar's headers may add to the workspace limit: an archive past limit + this is refused
     * @param timeout         one move's whole budget (pack, carry, unpack); past it the sandbox's workspace is lost
     */
    public record HandoverSettings(int threads, int chunkBytes, long archiveOverhead, Duration timeout) {
        public HandoverSettings {
            if (threads < 1) {
                throw new IllegalArgumentException("agentexec.cluster.worker.handover.threads must be at least 1, got " + threads);
            }
            if (chunkBytes < 1024) {
                throw new IllegalArgumentException("agentexec.cluster.worker.handover.chunk-bytes must be at least 1k, got "
                        + chunkBytes);
            }
            if (archiveOverhead < 0) {
                throw new IllegalArgumentException("agentexec.cluster.worker.handover.archive-overhead must not be negative, got "
                        + archiveOverhead);
            }
            if (timeout.isNegative() || timeout.isZero()) {
                throw new IllegalArgumentException("agentexec.cluster.worker.handover.timeout must be positive, got " + timeout);
            }
        }

        /** The largest archive of a workspace of {@code workspaceBytes} a move carries. */
        public long maxArchiveBytes(long workspaceBytes) {
            return workspaceBytes + archiveOverhead;
        }
    }

    /**
     * The node's admin routes (drain, its status) on the pekko-management port; off without a token.
     *
     * @param token the bearer token the routes require; empty: the routes answer 403 and, with seed-node formation,
     *              the management port is not opened at all
     * @param host  where the management port listens with seed-node formation (Kubernetes: pekko.management.http)
     * @param port  its port there
     */
    public record AdminSettings(String token, String host, int port) {
        /** A token shorter than this is refused at start: it would be guessable. */
        static final int MIN_TOKEN_LENGTH = 16;

        public AdminSettings {
            Objects.requireNonNull(token, "token");
            if (!token.isEmpty() && token.length() < MIN_TOKEN_LENGTH) {
                throw new IllegalArgumentException("agentexec.cluster.admin.token (AGENTEXEC_ADMIN_TOKEN) must be at least "
                        + MIN_TOKEN_LENGTH + " characters, got " + token.length());
            }
        }

        public boolean enabled() {
            return !token.isEmpty();
        }

        @Override
        public String toString() {
            return "AdminSettings[token=" + (token.isEmpty() ? "none" : "set") + ", host=" + host + ", port=" + port + "]";
        }
    }

    /**
     * @param persistBeforeRun the worker runs the code only after the entity persisted the attempt's start
     *                         and told it to proceed: a coordinator that dies in between leaves no run
     *                         behind that a retry could repeat unannounced (costs one journal write per run)
     */
    public record ExecutionSettings(int maxAttempts, Backoff retryBackoff, Duration retryCapacityWait,
                                    Duration runWatchdogSlack, Duration queuedWatchdog, Duration linger,
                                    Duration replyTimeoutSlack, boolean persistBeforeRun) {
        public ExecutionSettings {
            if (maxAttempts < 1) {
                throw new IllegalArgumentException("agentexec.cluster.execution.max-attempts must be at least 1, got " + maxAttempts);
            }
        }
    }

    /**
     * @param moveTimeout how long a sandbox's entity waits for its move off a draining worker (the handover's timeout,
     *                    plus the ask-timeout for the messages around it) before it records the workspace as lost
     */
    public record SandboxSettings(Duration idleTimeout, int rememberedResults, Duration moveTimeout) {
    }

    /**
     * Live output: the worker sends at most one batch per {@code flushInterval}, of at most
     * {@code maxChunkBytes}, holds at most {@code bufferBytes} waiting (more is dropped and counted);
     * the caller's relay holds at most {@code subscriberMailbox} chunks.
     */
    public record OutputSettings(Duration flushInterval, int maxChunkBytes, int bufferBytes, int subscriberMailbox) {
        public OutputSettings {
            if (maxChunkBytes < 4 || bufferBytes < maxChunkBytes || subscriberMailbox < 1) {
                throw new IllegalArgumentException("agentexec.cluster.output needs max-chunk-bytes >= 4, buffer-bytes >= "
                        + "max-chunk-bytes and subscriber-mailbox >= 1, got " + maxChunkBytes + ", " + bufferBytes
                        + ", " + subscriberMailbox);
            }
        }
    }

    /** Files through the cluster: at most {@code maxBytes} per read or write (a message carries them); an answer within {@code timeout}. */
    public record FilesSettings(int maxBytes, Duration timeout) {
        public FilesSettings {
            if (maxBytes < 1) {
                throw new IllegalArgumentException("agentexec.cluster.files.max-bytes must be positive, got " + maxBytes);
            }
        }
    }

    /**
     * Mutual TLS between the nodes (see reference.conf). The stores are checked by {@link #check()} when a
     * node starts, not when settings are read: reading a configuration touches no file.
     */
    public record TlsSettings(boolean enabled, String keyStore, String keyStorePassword, String keyPassword,
                              String trustStore, String trustStorePassword, boolean allowPlaintextOffLoopback) {

        /** The key's password: its own when set, else the key store's. */
        public String effectiveKeyPassword() {
            return keyPassword.isEmpty() ? keyStorePassword : keyPassword;
        }

        /**
         * With TLS on: both stores are given, open with their passwords, the key store holds a private key
         * with its certificate and the trust store at least one certificate. Errors name the setting and
         * its environment variable.
         */
        public void check() {
            if (!enabled) {
                return;
            }
            KeyStore keys = open("key-store", "AGENTEXEC_TLS_KEY_STORE", keyStore, "AGENTEXEC_TLS_KEY_STORE_PASSWORD",
                    keyStorePassword);
            KeyStore trusted = open("trust-store", "AGENTEXEC_TLS_TRUST_STORE", trustStore,
                    "AGENTEXEC_TLS_TRUST_STORE_PASSWORD", trustStorePassword);
            try {
                boolean hasKey = false;
                for (String alias : Collections.list(keys.aliases())) {
                    if (keys.isKeyEntry(alias)) {
                        keys.getKey(alias, effectiveKeyPassword().toCharArray());
                        hasKey |= keys.getCertificateChain(alias) != null;
                    }
                }
                if (!hasKey) {
                    throw new IllegalArgumentException("agentexec.cluster.tls.key-store " + keyStore + " holds no "
                            + "private key with its certificate (AGENTEXEC_TLS_KEY_STORE; scripts/make-certs.sh makes one)");
                }
                if (Collections.list(trusted.aliases()).stream().noneMatch(a -> isCertificate(trusted, a))) {
                    throw new IllegalArgumentException("agentexec.cluster.tls.trust-store " + trustStore + " holds no "
                            + "certificate (AGENTEXEC_TLS_TRUST_STORE: the cluster CA's certificate)");
                }
            } catch (GeneralSecurityException e) {
                throw new IllegalArgumentException("agentexec.cluster.tls.key-password does not open the key in "
                        + keyStore + " (AGENTEXEC_TLS_KEY_PASSWORD, else AGENTEXEC_TLS_KEY_STORE_PASSWORD): " + e.getMessage());
            }
        }

        private static boolean isCertificate(KeyStore store, String alias) {
            try {
                return store.getCertificate(alias) != null;
            } catch (KeyStoreException e) {
                return false;
            }
        }

        private static KeyStore open(String setting, String variable, String file, String passwordVariable,
                                     String password) {
            String name = "agentexec.cluster.tls." + setting;
            if (file.isBlank()) {
                throw new IllegalArgumentException(name + " is not set: with agentexec.cluster.tls.enabled (AGENTEXEC_TLS) "
                        + "every node needs one; set " + variable + " (scripts/make-certs.sh makes the stores)");
            }
            if (password.isEmpty()) {
                throw new IllegalArgumentException(name + "-password is not set: set " + passwordVariable);
            }
            Path path = Path.of(file);
            if (!Files.isRegularFile(path) || !Files.isReadable(path)) {
                throw new IllegalArgumentException(name + " " + file + " is not a readable file (" + variable + ")");
            }
            try {
                return KeyStore.getInstance(path.toFile(), password.toCharArray());
            } catch (IOException | GeneralSecurityException e) {
                throw new IllegalArgumentException(name + " " + file + " cannot be opened with " + passwordVariable
                        + ": " + e.getMessage());
            }
        }
    }

    public record PersistenceSettings(Dialect dialect, String url, String user, String password, String schema,
                                      int poolSize) {
        public PersistenceSettings {
            // H2 closes an embedded database from a JVM shutdown hook of its own, which runs beside the node's
            // coordinated shutdown: a SIGTERM'd node then failed to persist what its drain records (a sandbox's
            // WorkspaceLost: "Database is already closed") and waited out its drain timeout. The node closes its
            // journal itself, after the drain; an operator's explicit DB_CLOSE_ON_EXIT is kept.
            if (dialect == Dialect.H2 && url != null && !url.toUpperCase(java.util.Locale.ROOT).contains(";DB_CLOSE_ON_EXIT=")) {
                url = url + ";DB_CLOSE_ON_EXIT=FALSE";
            }
            // No default password ships for PostgreSQL (it used to be the user name): the operator gives one.
            if (dialect == Dialect.POSTGRESQL && (password == null || password.isEmpty())) {
                throw new IllegalArgumentException("agentexec.cluster.persistence.password is not set: a PostgreSQL "
                        + "journal needs the database password; set the environment variable AGENTEXEC_DB_PASSWORD "
                        + "(there is no default)");
            }
        }

        /** The URL the journal connects with: the configured one, set to the configured schema if any. */
        public String journalUrl() {
            if (schema.isBlank()) {
                return url;
            }
            return switch (dialect) {
                case POSTGRESQL -> url + (url.contains("?") ? "&" : "?") + "currentSchema=" + schema;
                case H2 -> url + ";SCHEMA=" + schema;
            };
        }

        /**
         * A plain JDBC connection to the journal's database, for what reads or writes it beside pekko's plugin (the
         * nodes and tenants tables, the retention of finished one-offs): a few calls per start, sweep or key lookup.
         */
        public Connection connect() throws SQLException {
            try {
                Class.forName(dialect.driver());
            } catch (ClassNotFoundException e) {
                throw new SQLException("no JDBC driver " + dialect.driver() + " on the classpath", e);
            }
            return DriverManager.getConnection(journalUrl(), user, password);
        }
    }

    public ClusterSettings {
        roles = Set.copyOf(roles);
        seedNodes = List.copyOf(seedNodes);
        Objects.requireNonNull(formation, "formation");
        if (roles.isEmpty()) {
            throw new IllegalArgumentException("agentexec.cluster.roles must name at least one of gateway, worker");
        }
        Objects.requireNonNull(reaper, "reaper");
        if (nodeName == null || !NODE_NAME.matcher(nodeName).matches()) {
            throw new IllegalArgumentException("agentexec.cluster.node-name (AGENTEXEC_NODE_NAME) must be 1 to 253 letters, "
                    + "digits, '.', '_', ':' or '-', starting with a letter or digit; got '" + nodeName + "'");
        }
        // The worker answers a stuck file operation (and closes its container) before the caller gives up on it.
        if (worker.fileOpTimeout().compareTo(files.timeout()) >= 0) {
            throw new IllegalArgumentException("agentexec.cluster.worker.file-op-timeout (" + worker.fileOpTimeout()
                    + ") must be shorter than agentexec.cluster.files.timeout (" + files.timeout() + ")");
        }
    }

    public boolean has(NodeRole role) {
        return roles.contains(role);
    }

    public static ClusterSettings fromConfig(Config root) {
        Config c = root.getConfig("agentexec.cluster");
        Set<NodeRole> roles = EnumSet.noneOf(NodeRole.class);
        commaList(c.getString("roles")).forEach(r -> roles.add(NodeRole.parse(r)));
        Config w = c.getConfig("worker");
        Config e = c.getConfig("execution");
        Config s = c.getConfig("sandbox");
        Config p = c.getConfig("persistence");
        Config o = c.getConfig("output");
        Config f = c.getConfig("files");
        Config t = c.getConfig("tls");
        Config h = w.getConfig("handover");
        return new ClusterSettings(
                c.getString("system-name"),
                roles,
                Formation.parse(c.getString("formation")),
                commaList(c.getString("seed-nodes")),
                c.getDuration("ask-timeout"),
                new WorkerSettings(w.getInt("slots"), w.getInt("queue"), w.getDuration("load-report-interval"),
                        w.getDuration("orphan-session-timeout"), Backoff.fromConfig(w.getConfig("restart-backoff")),
                        w.getDuration("cancel-retry-interval"), w.getInt("file-threads"), w.getInt("file-queue"),
                        w.getDuration("file-op-timeout"), w.getDuration("proceed-timeout"), w.getDuration("drain-timeout"),
                        new HandoverSettings(h.getInt("threads"), bytes(h, "chunk-bytes"), h.getBytes("archive-overhead"),
                                h.getDuration("timeout"))),
                new ExecutionSettings(e.getInt("max-attempts"), Backoff.fromConfig(e.getConfig("retry-backoff")),
                        e.getDuration("retry-capacity-wait"),
                        e.getDuration("run-watchdog-slack"), e.getDuration("queued-watchdog"), e.getDuration("linger"),
                        e.getDuration("reply-timeout-slack"), e.getBoolean("persist-before-run")),
                new SandboxSettings(s.getDuration("idle-timeout"), s.getInt("remembered-results"),
                        w.getDuration("handover.timeout").plus(c.getDuration("ask-timeout"))),
                new PersistenceSettings(Dialect.parse(p.getString("dialect")), p.getString("url"), p.getString("user"),
                        p.getString("password"), p.getString("schema"), p.getInt("pool-size")),
                H2Housekeeping.Settings.fromConfig(p.getConfig("h2-housekeeping")),
                ExecutionRetention.Settings.fromConfig(e.getConfig("finished-retention")),
                new OutputSettings(o.getDuration("flush-interval"), bytes(o, "max-chunk-bytes"), bytes(o, "buffer-bytes"),
                        o.getInt("subscriber-mailbox")),
                new FilesSettings(bytes(f, "max-bytes"), f.getDuration("timeout")),
                new TlsSettings(t.getBoolean("enabled"), t.getString("key-store"), t.getString("key-store-password"),
                        t.getString("key-password"), t.getString("trust-store"), t.getString("trust-store-password"),
                        t.getBoolean("allow-plaintext-off-loopback")),
                new AdminSettings(c.getString("admin.token"), c.getString("admin.host"), c.getInt("admin.port")),
                c.getString("node-name").isBlank() ? hostName() : c.getString("node-name").trim(),
                new ReaperSettings(c.getDuration("reaper.interval"), c.getDuration("reaper.join-grace")));
    }

    /**
     * {@code agentexec.cluster.node-name} of a node's configuration (blank: the host name), checked as the node
     * checks it: for what labels this node without the rest of the cluster's settings (the gateway's metrics).
     */
    public static String nodeName(Config root) {
        String configured = root.getString("agentexec.cluster.node-name").trim();
        String name = configured.isEmpty() ? hostName() : configured;
        if (!NODE_NAME.matcher(name).matches()) {
            throw new IllegalArgumentException("agentexec.cluster.node-name (AGENTEXEC_NODE_NAME) must be 1 to 253 letters, "
                    + "digits, '.', '_', ':' or '-', starting with a letter or digit; got '" + name + "'");
        }
        return name;
    }

    /** The default node name: this machine's host name (a pod's name on Kubernetes). */
    static String hostName() {
        String fromEnvironment = System.getenv("HOSTNAME");
        if (fromEnvironment != null && NODE_NAME.matcher(fromEnvironment).matches()) {
            return fromEnvironment;
        }
        String name;
        try {
            name = java.net.InetAddress.getLocalHost().getHostName();
        } catch (java.net.UnknownHostException e) {
            name = "localhost";
        }
        // a name the pattern refuses (odd characters, too long) still makes a usable label
        String cleaned = name.replaceAll("[^A-Za-z0-9._:-]", "-").replaceAll("^[^A-Za-z0-9]+", "");
        cleaned = cleaned.substring(0, Math.min(cleaned.length(), 253));
        return cleaned.isEmpty() ? "localhost" : cleaned;
    }

    private static int bytes(Config c, String path) {
        long value = c.getBytes(path);
        if (value > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("agentexec.cluster." + path + " is too large: " + value);
        }
        return (int) value;
    }

    private static List<String> commaList(String text) {
        return Arrays.stream(text.split(",")).map(String::trim).filter(x -> !x.isEmpty()).toList();
    }
}
