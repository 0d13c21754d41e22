package io.agentexec.gateway;

import com.typesafe.config.Config;
import io.agentexec.cluster.executors.SeedExecutors;
import io.agentexec.cluster.port.ExecutionPort;
import io.agentexec.gateway.executions.ExecutionRegistry;
import io.agentexec.gateway.grpc.GrpcApi;
import io.agentexec.gateway.http.ConnectionGuard;
import io.agentexec.gateway.http.GuardTelemetry;
import io.agentexec.gateway.http.HttpApi;
import io.agentexec.gateway.metrics.Metrics;
import io.agentexec.gateway.service.GatewayService;
import io.agentexec.gateway.service.RequestRules;
import io.agentexec.gateway.spi.ConversationService;
import io.agentexec.gateway.spi.TenantId;
import io.agentexec.gateway.tenant.TenantGuard;
import io.agentexec.gateway.tenant.TenantRegistry;
import io.agentexec.gateway.tenant.DatabaseTenants;
import io.agentexec.gateway.tenant.TenantStore;
import io.agentexec.cluster.ClusterSettings.PersistenceSettings;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import io.agentexec.sandbox.EngineSettings;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.IntSupplier;
import org.apache.pekko.japi.function.Function;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.grpc.javadsl.ServiceHandler;
import org.apache.pekko.http.javadsl.Http;
import org.apache.pekko.http.javadsl.ServerBinding;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.settings.ServerSettings;
import org.apache.pekko.stream.Materializer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running gateway: the HTTP API and the gRPC services on one port (or two) over what it is given to serve (the
 * execution port, the tenants, the conversations, the actor system: {@link Services}, put together by the node's
 * composition root in modules/node), and a graceful stop that finishes the work in flight. What it is given is
 * its owner's to stop, after it.
 */
public final class Gateway implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(Gateway.class);
    private static final Duration DRAIN_POLL = Duration.ofMillis(100);

    /**
     * What a gateway serves; it builds none of it and stops none of it.
     *
     * @param system        the actor system its HTTP server runs on (the cluster's, or a local one)
     * @param port          where code runs (the cluster's adapter, or this JVM's engine)
     * @param tenants       who may call, at what rate, under which policy
     * @param gatewayNodes  how many gateway nodes share each tenant's rate now (1 on a single node)
     * @param conversations the AG2 conversations (the agents' adapter, or {@link io.agentexec.gateway.spi.NoConversations})
     * @param executors     the seed's executors (profiles, policies, the tenant's cache and statistics), the node's one
     *                      set, shared with the agents
     */
    public record Services(ActorSystem<?> system, ExecutionPort port, TenantGuard tenants, IntSupplier gatewayNodes,
                           ConversationService conversations, SeedExecutors executors) {
        public Services {
            Objects.requireNonNull(executors, "executors");
            Objects.requireNonNull(system, "system");
            Objects.requireNonNull(port, "port");
            Objects.requireNonNull(tenants, "tenants");
            Objects.requireNonNull(gatewayNodes, "gatewayNodes");
            Objects.requireNonNull(conversations, "conversations");
        }
    }

    private final GatewaySettings settings;
    private final ActorSystem<?> system;
    private final List<ServerBinding> bindings;
    private final ExecutionRegistry registry;
    private final AtomicBoolean draining;
    private final HttpApi http;
    private final boolean conversationsAvailable;
    private final IntSupplier gatewayNodes;
    private final ConnectionGuard connectionGuard;
    private final Optional<ServerBinding> metricsBinding;
    private final AtomicBoolean closed = new AtomicBoolean();

    private Gateway(GatewaySettings settings, ActorSystem<?> system, List<ServerBinding> bindings,
                    ExecutionRegistry registry, AtomicBoolean draining, HttpApi http,
                    boolean conversationsAvailable, IntSupplier gatewayNodes, ConnectionGuard connectionGuard,
                    Optional<ServerBinding> metricsBinding) {
        this.connectionGuard = connectionGuard;
        this.metricsBinding = metricsBinding;
        this.conversationsAvailable = conversationsAvailable;
        this.gatewayNodes = gatewayNodes;
        this.settings = settings;
        this.system = system;
        this.bindings = List.copyOf(bindings);
        this.registry = registry;
        this.draining = draining;
        this.http = http;
    }

    /**
     * Binds the gateway described by {@code config} ({@code agentexec.gateway}, the languages and default limits of
     * {@code agentexec.sandbox}) over {@code services}. On failure nothing stays bound; {@code services} are left
     * as they were, for their owner to stop.
     */
    public static Gateway start(Config config, Services services) {
        GatewaySettings settings = GatewaySettings.fromConfig(config);
        EngineSettings engineSettings = EngineSettings.fromConfig(config);
        checkSettings(settings);
        ActorSystem<?> system = services.system();
        ExecutionPort port = services.port();
        ConversationService conversations = services.conversations();
        TenantGuard guard = services.tenants();
        IntSupplier gatewayNodes = services.gatewayNodes();
        Metrics metrics = new Metrics(io.agentexec.cluster.ClusterSettings.nodeName(config));
        // every run the node's executors count (this gateway's, and its chats' code) is in Prometheus too
        services.executors().onSample(sample -> metrics.recordExecutorRun(sample.source(), sample.profile(),
                sample.verdict(), sample.cached()));
        ExecutionRegistry registry = new ExecutionRegistry(Clock.systemUTC(), settings.executionRetention(),
                settings.replayChunks());
        AtomicBoolean draining = new AtomicBoolean();
        Materializer materializer = Materializer.matFromSystem(system);
        GatewayService service = new GatewayService(settings, port, conversations, guard, registry, metrics,
                new RequestRules(engineSettings.languages(), engineSettings.defaultLimits(), services.executors()), draining,
                services.executors());
        HttpApi http = new HttpApi(settings, service, materializer);
        GrpcApi grpc = new GrpcApi(settings, service, system);
        List<ServerBinding> bindings = new ArrayList<>();
        Http server = Http.get(system);
        ConnectionGuard connectionGuard = new ConnectionGuard(settings.connections(),
                closed -> metrics.recordConnectionClosed(closed.label()));
        ConnectionGuard.install(system.classicSystem(), connectionGuard);
        Optional<ServerBinding> metricsBinding = Optional.empty();
        try {
            if (settings.grpcPort().isEmpty()) {
                bindings.add(bind(server, settings, settings.port(), Optional.of(grpc), Optional.of(http)));
            } else {
                bindings.add(bind(server, settings, settings.port(), Optional.empty(), Optional.of(http)));
                bindings.add(bind(server, settings, settings.grpcPort().get(), Optional.of(grpc), Optional.empty()));
            }
            if (settings.metrics().port().isPresent()) {
                metricsBinding = Optional.of(bindMetrics(server, settings, http));
            }
            if (!GuardTelemetry.installedIn(system.classicSystem())) {
                throw new IllegalStateException("the connection guard is not on this node's HTTP server: "
                        + "pekko.http.http2-telemetry-class must be " + GuardTelemetry.class.getName()
                        + " and pekko.http.server.enable-http2 on (both set by the gateway's reference.conf)");
            }
        } catch (RuntimeException e) {
            bindings.forEach(b -> b.unbind());
            metricsBinding.ifPresent(b -> b.unbind());
            ConnectionGuard.uninstall(system.classicSystem(), connectionGuard);
            throw e;
        }
        Gateway gateway = new Gateway(settings, system, bindings, registry, draining, http,
                conversations.available(), gatewayNodes, connectionGuard, metricsBinding);
        log.info("agentexec gateway listening on {} (backend {}, auth {})", gateway.addresses(), port.kind(),
                settings.authMode());
        return gateway;
    }

    @SuppressWarnings("unchecked")
    private static ServerBinding bind(Http server, GatewaySettings settings, int port, Optional<GrpcApi> grpc,
                                      Optional<HttpApi> http) {
        String host = settings.host();
        List<Function<HttpRequest, CompletionStage<HttpResponse>>> handlers = new ArrayList<>();
        grpc.ifPresent(g -> handlers.addAll(g.handlers()));
        // HTTP last: it answers every request (a JSON 404 at worst), so gRPC paths must be tried first.
        http.ifPresent(h -> handlers.add(h::handle));
        Function<HttpRequest, CompletionStage<HttpResponse>> handler =
                ServiceHandler.concatOrNotFound(handlers.toArray(new Function[0]));
        try {
            return server.newServerAt(host, port).adaptSettings(s -> serverSettings(s, settings.connections()))
                    .bind(handler).toCompletableFuture().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IllegalStateException("cannot listen on " + host + ":" + port + ": " + e.getMessage(), e);
        }
    }

    /** pekko-http's own limits, from agentexec.gateway.connections (HTTP/2 on: gRPC shares the port). */
    static ServerSettings serverSettings(ServerSettings base, GatewaySettings.ConnectionSettings connections) {
        return base.withEnableHttp2(true)
                .withMaxConnections(connections.max())
                .withTimeouts(base.getTimeouts().withIdleTimeout(
                        scala.concurrent.duration.Duration.fromNanos(connections.idleTimeout().toNanos())))
                .withHttp2Settings(base.getHttp2Settings().withPingInterval(connections.http2PingInterval()));
    }

    /** The metrics' own listener: {@code GET /metrics} only, the same connection rules as the API. */
    private static ServerBinding bindMetrics(Http server, GatewaySettings settings, HttpApi http) {
        String host = settings.metrics().host();
        int port = settings.metrics().port().orElseThrow();
        try {
            return server.newServerAt(host, port).adaptSettings(s -> serverSettings(s, settings.connections()))
                    .bind(http::metricsListener).toCompletableFuture().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new IllegalStateException("cannot serve metrics on " + host + ":" + port + " (agentexec.gateway.metrics; "
                    + "port -1 turns the listener off): " + e.getMessage(), e);
        }
    }

    /**
     * Refuses settings the gateway must not listen with (no authentication off loopback; metrics off loopback without
     * their token): the node checks them before it starts anything, the gateway again when it binds.
     */
    public static void checkSettings(GatewaySettings settings) {
        checkAuthBinding(settings);
        checkMetricsBinding(settings);
    }

    /** Metrics name the cluster's internal addresses: a listener other machines reach needs the metrics token. */
    static void checkMetricsBinding(GatewaySettings settings) {
        GatewaySettings.MetricsSettings metrics = settings.metrics();
        if (metrics.port().isEmpty() || metrics.token().isPresent()) {
            return;
        }
        try {
            for (InetAddress a : InetAddress.getAllByName(metrics.host())) {
                if (!a.isLoopbackAddress()) {
                    throw new IllegalStateException("agentexec.gateway.metrics.host " + metrics.host() + " is not a loopback "
                            + "address: set agentexec.gateway.metrics.token (AGENTEXEC_METRICS_TOKEN) so that only "
                            + "the scraper reads them");
                }
            }
        } catch (UnknownHostException e) {
            throw new IllegalStateException("unknown metrics host " + metrics.host(), e);
        }
    }

    /** Without authentication the gateway must not be reachable from other machines. */
    static void checkAuthBinding(GatewaySettings settings) {
        if (settings.authMode() != GatewaySettings.AuthMode.NONE) {
            return;
        }
        try {
            for (InetAddress a : InetAddress.getAllByName(settings.host())) {
                if (!a.isLoopbackAddress()) {
                    throw new IllegalStateException("agentexec.gateway.auth.mode = none only binds to a loopback address; "
                            + settings.host() + " is not one (use api-keys)");
                }
            }
        } catch (UnknownHostException e) {
            throw new IllegalStateException("unknown gateway host " + settings.host(), e);
        }
    }

    /**
     * The tenants of {@code agentexec.gateway.auth} on the engine backend (no database): the keys file (its first
     * tenant made when it has none and generate-first-key is on: see {@link #showFirstKey}), or the one anonymous
     * tenant without auth.
     */
    public static TenantGuard tenantGuard(GatewaySettings settings, IntSupplier gatewayNodes, PrintStream console) {
        if (settings.authMode() == GatewaySettings.AuthMode.NONE) {
            log.warn("authentication is off (agentexec.gateway.auth.mode = none): every caller is tenant 'anonymous'");
            return TenantGuard.noAuth(settings.tenantDefaults(), gatewayNodes);
        }
        TenantRegistry registry = TenantRegistry.load(settings.keysFile(), settings.tenantDefaults());
        if (registry.tenantCount() == 0) {
            if (!settings.generateFirstKey()) {
                throw new IllegalStateException("no tenants in " + settings.keysFile() + " and generate-first-key is off");
            }
            String key = TenantRegistry.addTenant(settings.keysFile(), new TenantId(settings.firstTenant()));
            showFirstKey(settings, key, console, System.console() != null);
            registry = TenantRegistry.load(settings.keysFile(), settings.tenantDefaults());
        }
        return TenantGuard.withKeys(registry, settings.tenantDefaults(), gatewayNodes);
    }

    /**
     * The tenants of {@code agentexec.gateway.auth} on the cluster backend: the journal's database, shared by every
     * gateway node and re-read every {@code auth.refresh-interval} ({@link DatabaseTenants}). The keys file, when it
     * exists, is imported first (what the database lacks of it); with no tenant at all and generate-first-key on, the
     * first tenant is made (see {@link #showFirstKey}). The schema is migrated first (a no-op when the cluster's start
     * did it).
     */
    public static TenantGuard tenantGuard(GatewaySettings settings, PersistenceSettings database, IntSupplier gatewayNodes,
                                          PrintStream console) {
        if (settings.authMode() == GatewaySettings.AuthMode.NONE) {
            return tenantGuard(settings, gatewayNodes, console);
        }
        TenantStore store = new TenantStore(database);
        // a worker-only node serves the API too, and may start before any gateway node has migrated the schema
        io.agentexec.cluster.persistence.SchemaMigrations.migrate(database);
        try {
            TenantRegistry.FileContents file = TenantRegistry.read(settings.keysFile());
            if (!file.keyHashes().isEmpty()) {
                int added = store.importKeys(file.tenants(), file.keyHashes(), System.currentTimeMillis());
                if (added > 0) {
                    log.info("imported {} API key hash(es) from {} into the database", added, settings.keysFile());
                }
            }
            DatabaseTenants tenants = DatabaseTenants.start(store, settings.tenantDefaults(), settings.keysRefresh());
            if (tenants.tenantCount() == 0) {
                if (!settings.generateFirstKey()) {
                    throw new IllegalStateException("no tenant holds a key in the database and generate-first-key is off "
                            + "(create one: agentexec tenant create NAME)");
                }
                Optional<String> key = store.createFirst(new TenantId(settings.firstTenant()), System.currentTimeMillis());
                key.ifPresent(k -> showFirstKey(settings, k, console, System.console() != null));
                tenants = DatabaseTenants.start(store, settings.tenantDefaults(), settings.keysRefresh());
            }
            return TenantGuard.withKeys(tenants, settings.tenantDefaults(), gatewayNodes);
        } catch (java.sql.SQLException e) {
            throw new IllegalStateException("cannot read the tenants from the database (" + database.dialect() + "): "
                    + e.getMessage(), e);
        }
    }

    /**
     * Shows a first tenant's new key once: on {@code console} when standard output is a terminal (a person started
     * the node), else (a service, a container: stdout is a log collector's) written to {@code auth.first-key-file},
     * readable by its owner only, and only that path printed.
     */
    static void showFirstKey(GatewaySettings settings, String key, PrintStream console, boolean terminal) {
        if (terminal) {
            console.println("agentexec: created tenant '" + settings.firstTenant() + "'; its API key (shown once, stored "
                    + "hashed):");
            console.println("  " + key);
        } else {
            Path file = settings.firstKeyFile().toAbsolutePath();
            try {
                Files.createDirectories(file.getParent());
                Path tmp = Files.createTempFile(file.getParent(), ".first-key", ".tmp",
                        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
                Files.writeString(tmp, key + "\n", StandardCharsets.UTF_8);
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            } catch (IOException e) {
                throw new UncheckedIOException("cannot write the first API key to " + file
                        + " (agentexec.gateway.auth.first-key-file)", e);
            }
            console.println("agentexec: created tenant '" + settings.firstTenant() + "'; its API key is in " + file
                    + " (readable by its owner only; not printed because standard output is not a terminal)");
        }
        console.flush();
    }

    public List<InetSocketAddress> addresses() {
        return bindings.stream().map(ServerBinding::localAddress).toList();
    }

    /** The HTTP port actually bound (useful with port 0). */
    public int httpPort() {
        return bindings.get(0).localAddress().getPort();
    }

    /** The port serving gRPC: the HTTP port unless a separate one is configured. */
    public int grpcPort() {
        return bindings.get(bindings.size() - 1).localAddress().getPort();
    }

    /** The port of the metrics listener, when there is one (useful with port 0). */
    public Optional<Integer> metricsPort() {
        return metricsBinding.map(b -> b.localAddress().getPort());
    }

    /** Whether this node runs conversations (the agents, on the cluster backend). */
    public boolean conversationsAvailable() {
        return conversationsAvailable;
    }

    public HttpApi http() {
        return http;
    }

    public ActorSystem<?> system() {
        return system;
    }

    public boolean draining() {
        return draining.get();
    }

    /** The gateway nodes this one counts as reachable, itself included: each tenant's rate is shared by them. */
    public int gatewayNodes() {
        return gatewayNodes.getAsInt();
    }

    /**
     * Stops gracefully: refuses new work at once (503, readyz 503), stops accepting connections, lets executions in
     * flight finish up to the drain timeout. What it served stays up: its owner stops that next.
     */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        draining.set(true);
        log.info("gateway stopping: refusing new work, {} execution(s) in flight", registry.running());
        for (ServerBinding b : bindings) {
            b.unbind().toCompletableFuture().join();
        }
        metricsBinding.ifPresent(b -> b.unbind().toCompletableFuture().join());
        Instant deadline = Instant.now().plus(settings.drainTimeout());
        // The runs, then their streamed answers' last bytes (a run ends a moment before its answer is written whole).
        while ((registry.running() > 0 || http.streamingAnswers() > 0) && Instant.now().isBefore(deadline)) {
            try {
                Thread.sleep(DRAIN_POLL.toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        for (ServerBinding b : bindings) {
            // responses already produced (a finished run's result) still get written
            b.terminate(Duration.ofSeconds(5)).toCompletableFuture().join();
        }
        metricsBinding.ifPresent(b -> b.terminate(Duration.ofSeconds(5)).toCompletableFuture().join());
        ConnectionGuard.uninstall(system.classicSystem(), connectionGuard);
        log.info("gateway stopped");
    }
}
