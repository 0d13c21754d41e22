package io.agentexec.cluster;

import com.typesafe.config.Config;
import io.agentexec.cluster.persistence.Dialect;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.KeyStoreException;
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
        OutputSettings output,
        FilesSettings files,
        TlsSettings tls) {

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
     */
    public record WorkerSettings(int slots, int queueCapacity, Duration loadReportInterval,
                                 Duration orphanSessionTimeout, Backoff restartBackoff, Duration cancelRetryInterval,
                                 int fileThreads, int fileQueue, Duration fileOpTimeout, Duration proceedTimeout) {
        public WorkerSettings {
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

    public record SandboxSettings(Duration idleTimeout, int rememberedResults) {
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
    }

    public ClusterSettings {
        roles = Set.copyOf(roles);
        seedNodes = List.copyOf(seedNodes);
        Objects.requireNonNull(formation, "formation");
        if (roles.isEmpty()) {
            throw new IllegalArgumentException("agentexec.cluster.roles must name at least one of gateway, worker");
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
        return new ClusterSettings(
                c.getString("system-name"),
                roles,
                Formation.parse(c.getString("formation")),
                commaList(c.getString("seed-nodes")),
                c.getDuration("ask-timeout"),
                new WorkerSettings(w.getInt("slots"), w.getInt("queue"), w.getDuration("load-report-interval"),
                        w.getDuration("orphan-session-timeout"), Backoff.fromConfig(w.getConfig("restart-backoff")),
                        w.getDuration("cancel-retry-interval"), w.getInt("file-threads"), w.getInt("file-queue"),
                        w.getDuration("file-op-timeout"), w.getDuration("proceed-timeout")),
                new ExecutionSettings(e.getInt("max-attempts"), Backoff.fromConfig(e.getConfig("retry-backoff")),
                        e.getDuration("retry-capacity-wait"),
                        e.getDuration("run-watchdog-slack"), e.getDuration("queued-watchdog"), e.getDuration("linger"),
                        e.getDuration("reply-timeout-slack"), e.getBoolean("persist-before-run")),
                new SandboxSettings(s.getDuration("idle-timeout"), s.getInt("remembered-results")),
                new PersistenceSettings(Dialect.parse(p.getString("dialect")), p.getString("url"), p.getString("user"),
                        p.getString("password"), p.getString("schema"), p.getInt("pool-size")),
                new OutputSettings(o.getDuration("flush-interval"), bytes(o, "max-chunk-bytes"), bytes(o, "buffer-bytes"),
                        o.getInt("subscriber-mailbox")),
                new FilesSettings(bytes(f, "max-bytes"), f.getDuration("timeout")),
                new TlsSettings(t.getBoolean("enabled"), t.getString("key-store"), t.getString("key-store-password"),
                        t.getString("key-password"), t.getString("trust-store"), t.getString("trust-store-password"),
                        t.getBoolean("allow-plaintext-off-loopback")));
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
