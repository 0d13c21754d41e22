package io.agentexec.cluster;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigValueFactory;
import io.agentexec.cluster.ClusterSettings.Formation;
import io.agentexec.cluster.admin.AdminRoutes;
import io.agentexec.cluster.api.CancelReply;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.FileReply;
import io.agentexec.cluster.api.OutputChunk;
import io.agentexec.cluster.api.SandboxFileException;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.dispatch.Deadlines;
import io.agentexec.cluster.execution.ExecutionEntity;
import io.agentexec.cluster.persistence.ExecutionRetention;
import io.agentexec.cluster.persistence.H2Housekeeping;
import io.agentexec.cluster.persistence.SchemaMigrations;
import io.agentexec.cluster.policy.JobPolicy;
import io.agentexec.cluster.reaper.NodeRegistry;
import io.agentexec.cluster.reaper.OrphanReaper;
import io.agentexec.cluster.placement.Placement;
import io.agentexec.cluster.sandbox.SandboxEntity;
import io.agentexec.cluster.worker.ExecutionWorker;
import io.agentexec.cluster.worker.FileOperationPool;
import io.agentexec.cluster.worker.SessionTable;
import io.agentexec.cluster.worker.WorkerLoad;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.backend.NodeOwner;
import io.agentexec.sandbox.blocks.FilenameDirective;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.options.RunArgs;
import io.agentexec.sandbox.policy.ExecutionPolicy;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.time.Clock;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.regex.Pattern;
import org.apache.pekko.Done;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.MailboxSelector;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.pubsub.Topic;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Join;
import org.apache.pekko.management.cluster.bootstrap.ClusterBootstrap;
import org.apache.pekko.management.javadsl.PekkoManagement;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One agentexec node and the way into the cluster: start it from a {@link Config}, then create
 * sandboxes and run executions on any node. A node with the worker role owns its machine's
 * sandbox engine; a node with the gateway role hosts the sandbox and execution entities.
 */
public final class AgentexecCluster implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(AgentexecCluster.class);

    /** Ids and keys become persistence ids and actor names: printable, no spaces, bounded. */
    /** Room a message's envelope takes beside a handover chunk in one remoting frame. */
    private static final int ENVELOPE_BYTES = 64 * 1024;
    private static final Pattern SANDBOX_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    private static final Pattern IDEMPOTENCY_KEY = Pattern.compile("[A-Za-z0-9._:~@+=-]{1,200}");
    /** Docker's reference grammar, simplified: [registry[:port]/]path[:tag][@sha256:digest]. */
    private static final String IMAGE_PART = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
    private static final Pattern IMAGE = Pattern.compile("(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?" + IMAGE_PART
            + "(?:/" + IMAGE_PART + ")*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?");

    private final ActorSystem<Void> system;
    private final ClusterSettings settings;
    private final EngineSettings engineSettings;
    private final JobPolicy jobPolicy;
    private final Optional<SandboxEngine> engine;
    private final Optional<SessionTable> sessions;
    private final Optional<ExecutorService> slotThreads;
    private final Optional<FileOperationPool> fileThreads;
    private final ActorRef<Placement.Command> placement;
    private final ClusterSharding sharding;
    private final Optional<ActorRef<ExecutionWorker.Command>> worker;
    private final Optional<ExecutorService> handoverThreads;
    private final NodeShutdown shutdown;
    private final AtomicBoolean released = new AtomicBoolean();
    private final CompletableFuture<Void> engineReleased = new CompletableFuture<>();

    private AgentexecCluster(ActorSystem<Void> system, ClusterSettings settings, EngineSettings engineSettings,
                             JobPolicy jobPolicy, Optional<SandboxEngine> engine, Optional<SessionTable> sessions,
                             Optional<ExecutorService> slotThreads, Optional<FileOperationPool> fileThreads,
                             ActorRef<Placement.Command> placement, ClusterSharding sharding,
                             Optional<ActorRef<ExecutionWorker.Command>> worker, Optional<ExecutorService> handoverThreads,
                             NodeShutdown shutdown) {
        this.system = system;
        this.settings = settings;
        this.engineSettings = engineSettings;
        this.jobPolicy = jobPolicy;
        this.engine = engine;
        this.sessions = sessions;
        this.slotThreads = slotThreads;
        this.fileThreads = fileThreads;
        this.placement = placement;
        this.sharding = sharding;
        this.worker = worker;
        this.handoverThreads = handoverThreads;
        this.shutdown = shutdown;
    }

    /** This worker node's identity on its sandboxes: its cluster address and uid, and its node name. */
    private static NodeOwner nodeOwner(ActorSystem<Void> system, ClusterSettings settings) {
        var self = Cluster.get(system).selfMember().uniqueAddress();
        return new NodeOwner(self.address().toString(), self.longUid(), settings.nodeName());
    }

    /**
     * Records this worker in the journal's node registry before its first container: a worker sharing the daemon
     * then knows the containers as this cluster's. The table may not exist yet (a worker-only node started before any
     * gateway migrated the schema) or the database may be down: the reaper records it again once this node is up.
     */
    private static void register(NodeRegistry registry, NodeOwner owner) {
        try {
            registry.started(owner, System.currentTimeMillis());
        } catch (java.sql.SQLException e) {
            log.info("cannot record this worker in the journal's agentexec_nodes table yet ({}); recorded once it is up",
                    e.getMessage());
        }
    }

    /**
     * Starts a node: migrates the journal's schema (gateway), starts the sandbox engine (worker),
     * the actor system, sharding, placement and the worker, then joins the cluster.
     */
    public static AgentexecCluster start(Config config) {
        ClusterSettings settings = ClusterSettings.fromConfig(config);
        EngineSettings engineSettings = EngineSettings.fromConfig(config);
        settings.tls().check();
        JobPolicy jobPolicy = new JobPolicy(ExecutionPolicy.fromConfig(config.withFallback(ConfigFactory.defaultReference())),
                engineSettings);
        Config effective = effectiveConfig(config, settings);
        checkTransport(effective, settings);
        checkFrameSize(effective, settings);
        if (settings.has(NodeRole.GATEWAY)) {
            SchemaMigrations.migrate(settings.persistence());
        }
        // An H2 file journal is kept compact and forced to the device on a timer of its own (see H2Housekeeping).
        Optional<H2Housekeeping> housekeeping = H2Housekeeping.startIfEmbeddedFile(settings.persistence(),
                settings.h2Housekeeping());
        ActorSystem<Void> system;
        try {
            system = ActorSystem.create(Behaviors.empty(), settings.systemName(), effective);
        } catch (RuntimeException e) {
            housekeeping.ifPresent(H2Housekeeping::close);
            throw e;
        }
        system.getWhenTerminated().thenRun(() -> housekeeping.ifPresent(H2Housekeeping::close));
        // The engine starts once this node's cluster address and uid exist: its containers carry them, so that any
        // worker sharing the daemon removes them when this node is gone (OrphanReaper), whatever its host name.
        Optional<NodeOwner> owner = settings.has(NodeRole.WORKER) ? Optional.of(nodeOwner(system, settings))
                : Optional.empty();
        NodeRegistry registry = new NodeRegistry(settings.persistence());
        owner.ifPresent(o -> register(registry, o));
        Optional<SandboxEngine> engine;
        try {
            engine = owner.map(o -> SandboxEngine.start(engineSettings, Optional.of(o)));
        } catch (RuntimeException e) {
            system.terminate();
            system.getWhenTerminated().toCompletableFuture().join();
            throw e;
        }
        ActorRef<Topic.Command<WorkerLoad>> loadTopic = system.systemActorOf(
                Topic.create(WorkerLoad.class, "agentexec-worker-load"), "worker-load-topic", Props.empty());
        ActorRef<Placement.Command> placement = system.systemActorOf(Placement.create(loadTopic), "placement", Props.empty());

        Optional<SessionTable> sessions = engine.map(e -> new SessionTable(Clock.systemUTC()));
        // Runs have the slots' threads to themselves. File operations have a pool of their own, bounded in
        // threads and queue (past both refused at once): one stuck in a sandbox never delays another's run.
        Optional<ExecutorService> slotThreads = engine.map(e -> Executors.newFixedThreadPool(
                settings.worker().slots(), daemonThreads("agentexec-slot")));
        Optional<FileOperationPool> fileThreads = engine.map(e -> new FileOperationPool(settings.worker().fileThreads(),
                settings.worker().fileQueue(), daemonThreads("agentexec-file")));
        // Moving sandboxes off a draining worker (or onto this one) packs and unpacks workspaces on threads of their
        // own: each holds one archive in memory, so their number bounds what moves take.
        Optional<ExecutorService> handoverThreads = engine.map(e -> Executors.newFixedThreadPool(
                settings.worker().handover().threads(), daemonThreads("agentexec-handover")));
        ClusterSharding sharding = ClusterSharding.get(system);
        Optional<ActorRef<ExecutionWorker.Command>> worker = Optional.empty();
        if (engine.isPresent()) {
            // A draining worker tells each sandbox's entity (wherever it lives) to move it.
            ExecutionWorker.SandboxOwners owners = (sandboxId, workerName) -> sharding
                    .entityRefFor(SandboxEntity.TYPE_KEY, sandboxId).tell(new SandboxEntity.WorkerDraining(workerName));
            // The name carries an id per incarnation: a sandbox bound to a worker that restarted sees it gone.
            worker = Optional.of(system.systemActorOf(ExecutionWorker.create(engine.get(), jobPolicy, sessions.get(),
                            slotThreads.get(), fileThreads.get(), handoverThreads.get(), owners, settings.worker(),
                            settings.output(), loadTopic),
                    "execution-worker-" + UUID.randomUUID(), Props.empty()));
            system.systemActorOf(OrphanReaper.create(engine.get(), owner.orElseThrow(), registry, settings.reaper(),
                    Clock.systemUTC()), "orphan-reaper", Props.empty());
        }

        SandboxEntity.init(system, placement, settings);
        ExecutionEntity.init(system, placement, settings.execution());
        if (settings.has(NodeRole.GATEWAY)) {
            // Finished one-offs' records go once their retention is over; one node deletes: the oldest gateway.
            ExecutionRetention.start(settings.persistence(), settings.executionRetention(), ExecutionEntity.TYPE_KEY.name(),
                            ExecutionEntity.Finished.class.getName(), () -> leadsHousekeeping(system))
                    .ifPresent(retention -> system.getWhenTerminated().thenRun(retention::close));
        }

        NodeShutdown shutdown = NodeShutdown.attach(system);
        AgentexecCluster node = new AgentexecCluster(system, settings, engineSettings, jobPolicy, engine, sessions,
                slotThreads, fileThreads, placement, sharding, worker, handoverThreads, shutdown);
        if (worker.isPresent()) {
            shutdown.add(NodeShutdown.WORKER_DRAIN, "worker drain", node::drainWorkerWhenStopping);
        }
        if (engine.isPresent() && effective.getBoolean("pekko.coordinated-shutdown.run-by-jvm-shutdown-hook")) {
            // SIGTERM: pekko's JVM hook runs the drain, and the engine's own exit hook would remove the containers at
            // once, under the runs the drain lets finish (a SIGTERM'd node lost them all). The containers go once the
            // node has drained and left instead; pekko's hook waits for that.
            engine.get().ownerClosesAtExit();
            shutdown.addBlocking(CoordinatedShutdown.PhaseBeforeActorSystemTerminate(), "engine release",
                    node::releaseEngine);
        }
        system.getWhenTerminated().thenRun(node::releaseEngine);
        AdminRoutes.register(node);
        try {
            node.formCluster();
        } catch (RuntimeException e) {
            node.close();
            throw e;
        }
        log.info("agentexec node {} started with roles {}", node.selfAddress(), settings.roles());
        return node;
    }

    /** Whether this node is the oldest up member with the gateway role: the one that does cluster-wide housekeeping. */
    static boolean leadsHousekeeping(ActorSystem<?> system) {
        Cluster cluster = Cluster.get(system);
        Member self = cluster.selfMember();
        String role = NodeRole.GATEWAY.roleName();
        if (self.status() != MemberStatus.up() || !self.hasRole(role)) {
            return false;
        }
        for (Member member : cluster.state().getMembers()) {
            if (member.status() == MemberStatus.up() && member.hasRole(role) && member.isOlderThan(self)) {
                return false;
            }
        }
        return true;
    }

    private void formCluster() {
        Cluster cluster = Cluster.get(system);
        if (settings.formation() == Formation.KUBERNETES_BOOTSTRAP) {
            PekkoManagement.get(system).start();
            ClusterBootstrap.get(system).start();
            return;
        }
        if (settings.admin().enabled()) {
            // The admin routes (drain, its status) live on the management port: opened for them.
            try {
                PekkoManagement.get(system).start().toCompletableFuture().get(settings.askTimeout().toMillis(),
                        java.util.concurrent.TimeUnit.MILLISECONDS);
            } catch (Exception e) {
                throw new IllegalStateException("cannot open the management port for the admin routes on "
                        + settings.admin().host() + ":" + settings.admin().port() + " (agentexec.cluster.admin.host/port, "
                        + "AGENTEXEC_MANAGEMENT_HOST/_PORT): " + e.getMessage(), e);
            }
        }
        if (system.settings().config().getStringList("pekko.cluster.seed-nodes").isEmpty()) {
            cluster.manager().tell(Join.create(cluster.selfMember().address()));
        }
    }

    /** The configuration the actor system runs with: roles, seed nodes and the journal's database filled in. */
    static Config effectiveConfig(Config config, ClusterSettings settings) {
        Map<String, Object> overrides = new HashMap<>();
        overrides.put("pekko.cluster.roles", settings.roles().stream().map(NodeRole::roleName).sorted().toList());
        if (!settings.seedNodes().isEmpty()) {
            overrides.put("pekko.cluster.seed-nodes", settings.seedNodes());
        }
        var persistence = settings.persistence();
        String slick = "pekko-persistence-jdbc.shared-databases.slick.";
        overrides.put(slick + "profile", persistence.dialect().slickProfile());
        overrides.put(slick + "db.driver", persistence.dialect().driver());
        // Set here rather than by substitution: reference.conf is resolved on its own, before any overrides.
        overrides.put(slick + "db.url", persistence.journalUrl());
        overrides.put(slick + "db.user", persistence.user());
        overrides.put(slick + "db.password", persistence.password());
        overrides.put(slick + "db.numThreads", persistence.poolSize());
        if (settings.formation() != Formation.KUBERNETES_BOOTSTRAP && settings.admin().enabled()) {
            // Kubernetes says where management listens (config/kubernetes.conf); elsewhere the admin settings do.
            overrides.put("pekko.management.http.hostname", settings.admin().host());
            overrides.put("pekko.management.http.port", settings.admin().port());
        }
        overrides.put(slick + "db.maxConnections", persistence.poolSize());
        var tls = settings.tls();
        if (tls.enabled()) {
            // Mutual TLS: each side presents its certificate and checks the other's against the cluster CA.
            String ssl = "pekko.remote.artery.ssl.";
            overrides.put("pekko.remote.artery.transport", "tls-tcp");
            overrides.put(ssl + "ssl-engine-provider", "org.apache.pekko.remote.artery.tcp.ConfigSSLEngineProvider");
            overrides.put(ssl + "config-ssl-engine.key-store", tls.keyStore());
            overrides.put(ssl + "config-ssl-engine.key-store-password", tls.keyStorePassword());
            overrides.put(ssl + "config-ssl-engine.key-password", tls.effectiveKeyPassword());
            overrides.put(ssl + "config-ssl-engine.trust-store", tls.trustStore());
            overrides.put(ssl + "config-ssl-engine.trust-store-password", tls.trustStorePassword());
            overrides.put(ssl + "config-ssl-engine.require-mutual-authentication", true);
        }
        Config result = NodeShutdown.withWorkerDrain(config, settings.worker().drainTimeout());
        for (var entry : overrides.entrySet()) {
            result = result.withValue(entry.getKey(), ConfigValueFactory.fromAnyRef(entry.getValue()));
        }
        return result.withFallback(ConfigFactory.defaultReference()).resolve();
    }

    /**
     * Refuses plain-TCP remoting on anything but loopback (unless explicitly allowed): without TLS, whoever
     * reaches the port can join the cluster and send its entities and workers any message.
     */
    static void checkFrameSize(Config effective, ClusterSettings settings) {
        long frame = effective.getBytes("pekko.remote.artery.advanced.maximum-frame-size");
        int chunk = settings.worker().handover().chunkBytes();
        // A chunk travels in one message, with its envelope (ids, serializer's framing) beside it.
        if (chunk + ENVELOPE_BYTES > frame) {
            throw new IllegalArgumentException("agentexec.cluster.worker.handover.chunk-bytes (" + chunk + ") plus "
                    + ENVELOPE_BYTES + " bytes of envelope must fit pekko.remote.artery.advanced.maximum-frame-size ("
                    + frame + ")");
        }
    }

    static void checkTransport(Config effective, ClusterSettings settings) {
        String transport = effective.getString("pekko.remote.artery.transport");
        if (transport.equals("tls-tcp") || settings.tls().allowPlaintextOffLoopback()) {
            return;
        }
        for (String path : List.of("pekko.remote.artery.canonical.hostname", "pekko.remote.artery.bind.hostname")) {
            String host = effective.getString(path).trim();
            if (path.endsWith("bind.hostname") && host.isEmpty()) {
                continue; // binds where the canonical address is
            }
            if (!isLoopback(host)) {
                throw new IllegalArgumentException(path + " is '" + host + "', not a loopback address, and the "
                        + "cluster's remoting is plain " + transport + " (agentexec.cluster.tls.enabled is off): "
                        + "anyone who reaches that port could join the cluster. Turn mutual TLS on (AGENTEXEC_TLS=on, "
                        + "certificates from scripts/make-certs.sh), or, where nothing else can reach the port, set "
                        + "AGENTEXEC_ALLOW_PLAINTEXT_REMOTING=on (agentexec.cluster.tls.allow-plaintext-off-loopback)");
            }
        }
    }

    private static boolean isLoopback(String host) {
        if (host.isEmpty() || host.startsWith("<")) {
            return false; // pekko's <getHostAddress> / <getHostName>: the machine's network address
        }
        try {
            for (InetAddress address : InetAddress.getAllByName(host)) {
                if (!address.isLoopbackAddress()) {
                    return false;
                }
            }
            return true;
        } catch (UnknownHostException e) {
            return false;
        }
    }

    // ---- the API

    /** Creates a sandbox with a new id. Fails with {@link InvalidRequestException} for an unknown language. */
    public CompletionStage<SandboxView> createSandbox(String language, Limits limits) {
        return createSandbox("sbx-" + UUID.randomUUID(), language, limits);
    }

    /** Creates the sandbox {@code sandboxId}; creating it again with the same language is a no-op. */
    public CompletionStage<SandboxView> createSandbox(String sandboxId, String language, Limits limits) {
        try {
            return createSandbox(sandboxId, SandboxSpec.of(Objects.requireNonNull(language, "language"),
                    Objects.requireNonNull(limits, "limits")));
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /** Creates a sandbox with a new id, from an image and Docker options (see {@link SandboxSpec}). */
    public CompletionStage<SandboxView> createSandbox(SandboxSpec spec) {
        return createSandbox("sbx-" + UUID.randomUUID(), spec);
    }

    /**
     * Creates the sandbox {@code sandboxId} from {@code spec}; creating it again with the same
     * language, image and options is a no-op, with others an error naming the difference. Fails
     * with {@link InvalidRequestException} for an unknown language, a malformed image name, or
     * Docker options weaker than the engine allows.
     */
    public CompletionStage<SandboxView> createSandbox(String sandboxId, SandboxSpec spec) {
        try {
            checkSandboxId(sandboxId);
            Objects.requireNonNull(spec, "spec");
            String canonical = engineSettings.languages().find(spec.language())
                    .orElseThrow(() -> new InvalidRequestException("unknown language '" + spec.language() + "'"))
                    .name();
            spec.image().ifPresent(AgentexecCluster::checkImage);
            jobPolicy.checkSandbox(spec);
            SandboxSpec checked = spec.withLanguage(canonical);
            return sharding.entityRefFor(SandboxEntity.TYPE_KEY, sandboxId)
                    .askWithStatus(replyTo -> new SandboxEntity.Create(checked, replyTo), settings.askTimeout());
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
    }

    /**
     * AG2's {@code docker_run_args} and {@code docker_container_name}, read against this node's engine
     * settings (its hardening defaults, allowed networks and runtimes): the options and limits to
     * create a sandbox with. Throws {@link InvalidRequestException} naming a refused flag.
     */
    public RunArgs.Applied dockerRunArgs(List<String> dockerRunArgs, Optional<String> containerNamePrefix,
                                         Limits limits) {
        return RunArgs.apply(Objects.requireNonNull(dockerRunArgs, "dockerRunArgs"), containerNamePrefix,
                Objects.requireNonNull(limits, "limits"), engineSettings.optionRules());
    }

    /**
     * Runs a request: in the sandbox when one is named, else in a fresh container. The idempotency key
     * names the execution: asking again with the same key returns the first one's reply (marked
     * replayed) and never runs the code again. A key is per sandbox, or cluster-wide without one.
     */
    public CompletionStage<ExecutionOutcome> execute(Optional<String> sandboxId, ExecutionRequest request,
                                                     String idempotencyKey) {
        return execute(sandboxId, request, idempotencyKey, Optional.empty());
    }

    /**
     * As {@link #execute(Optional, ExecutionRequest, String)}, and {@code onOutput} gets the output
     * while it runs, on a thread of its own (it should not block): best-effort, bounded, possibly
     * missing pieces under load; the reply's result holds all of it. Not called after the reply.
     */
    public CompletionStage<ExecutionOutcome> execute(Optional<String> sandboxId, ExecutionRequest request,
                                                     String idempotencyKey, Consumer<OutputChunk> onOutput) {
        Objects.requireNonNull(onOutput, "onOutput");
        // A bounded mailbox: a slow consumer loses chunks rather than growing the node's memory.
        ActorRef<Object> relay = system.systemActorOf(OutputRelay.create(onOutput), "output-" + UUID.randomUUID(),
                MailboxSelector.bounded(settings.output().subscriberMailbox()));
        CompletionStage<ExecutionOutcome> reply = execute(sandboxId, request, idempotencyKey,
                Optional.of(relay.<OutputChunk>narrow()));
        return reply.whenComplete((r, e) -> relay.tell(OutputRelay.Stop.INSTANCE));
    }

    private CompletionStage<ExecutionOutcome> execute(Optional<String> sandboxId, ExecutionRequest request,
                                                      String idempotencyKey, Optional<ActorRef<OutputChunk>> output) {
        try {
            Objects.requireNonNull(request, "request");
            checkIdempotencyKey(idempotencyKey);
            sandboxId.ifPresent(AgentexecCluster::checkSandboxId);
            jobPolicy.checkRequest(request);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        Duration timeout = new Deadlines(settings.execution()).outcome(request.limits().timeout());
        if (sandboxId.isPresent()) {
            return sharding.entityRefFor(SandboxEntity.TYPE_KEY, sandboxId.get())
                    .ask(replyTo -> new SandboxEntity.Execute(idempotencyKey, request, output, replyTo), timeout);
        }
        // Refuse at the door when this node already knows every worker is full: no entity, no journal read.
        return AskPattern.<Placement.Command, Boolean>ask(placement, Placement.HasCapacity::new, settings.askTimeout(),
                        system.scheduler())
                .thenCompose(hasCapacity -> hasCapacity
                        ? sharding.entityRefFor(ExecutionEntity.TYPE_KEY, idempotencyKey)
                                .ask(replyTo -> new ExecutionEntity.Execute(request, output, replyTo), timeout)
                        : CompletableFuture.completedFuture(new ExecutionOutcome.Overloaded(idempotencyKey,
                                "every worker's slots and queue are full")));
    }

    /**
     * Cancels the execution with this key, in the sandbox when one is named. A running one is killed
     * on its worker, a queued one never runs; its one terminal reply is then a {@code Completed} with
     * verdict CANCELLED (unless it finished first). Unknown or finished keys change nothing and say so.
     */
    public CompletionStage<CancelReply> cancel(Optional<String> sandboxId, String idempotencyKey) {
        try {
            checkIdempotencyKey(idempotencyKey);
            sandboxId.ifPresent(AgentexecCluster::checkSandboxId);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        if (sandboxId.isPresent()) {
            return sharding.entityRefFor(SandboxEntity.TYPE_KEY, sandboxId.get())
                    .ask(replyTo -> new SandboxEntity.Cancel(idempotencyKey, replyTo), settings.askTimeout());
        }
        return sharding.entityRefFor(ExecutionEntity.TYPE_KEY, idempotencyKey)
                .ask(ExecutionEntity.Cancel::new, settings.askTimeout());
    }

    /**
     * Writes a file into the sandbox's workspace (opening its container if it has none yet), in order
     * with its executions. A bad path or content over {@code agentexec.cluster.files.max-bytes} fails
     * with {@link InvalidRequestException}; other failures with {@link SandboxFileException}.
     */
    public CompletionStage<Done> writeFile(String sandboxId, String path, byte[] content) {
        try {
            checkSandboxId(sandboxId);
            checkPath(path);
            Objects.requireNonNull(content, "content");
            if (content.length > settings.files().maxBytes()) {
                throw new InvalidRequestException("content of " + path + " is " + content.length
                        + " bytes, more than the " + settings.files().maxBytes() + " bytes a file may have here");
            }
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        return sharding.entityRefFor(SandboxEntity.TYPE_KEY, sandboxId)
                .<FileReply>ask(replyTo -> new SandboxEntity.WriteFile(path, content, replyTo), settings.files().timeout()
                        .plus(settings.askTimeout()))
                .thenApply(reply -> {
                    fileFailure(reply);
                    return Done.getInstance();
                });
    }

    /**
     * Reads a file of at most {@code maxBytes} from the sandbox's workspace. A missing file fails with
     * {@link SandboxFileException} of kind NOT_FOUND, a larger one TOO_LARGE; a bad path or
     * {@code maxBytes} outside 1..files.max-bytes with {@link InvalidRequestException}.
     */
    public CompletionStage<byte[]> readFile(String sandboxId, String path, long maxBytes) {
        try {
            checkSandboxId(sandboxId);
            checkPath(path);
            if (maxBytes < 1 || maxBytes > settings.files().maxBytes()) {
                throw new InvalidRequestException("maxBytes must be between 1 and " + settings.files().maxBytes()
                        + ", got " + maxBytes);
            }
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        return sharding.entityRefFor(SandboxEntity.TYPE_KEY, sandboxId)
                .<FileReply>ask(replyTo -> new SandboxEntity.ReadFile(path, maxBytes, replyTo), settings.files().timeout()
                        .plus(settings.askTimeout()))
                .thenApply(reply -> {
                    fileFailure(reply);
                    return ((FileReply.Content) reply).data();
                });
    }

    private static void fileFailure(FileReply reply) {
        if (reply instanceof FileReply.Invalid invalid) {
            throw new InvalidRequestException(invalid.message());
        }
        if (reply instanceof FileReply.Failed failed) {
            throw new SandboxFileException(failed.kind(), failed.message());
        }
    }

    /** Removes the sandbox's container and ends it; closing a closed sandbox succeeds. */
    public CompletionStage<SandboxView> closeSandbox(String sandboxId) {
        try {
            checkSandboxId(sandboxId);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        return sharding.entityRefFor(SandboxEntity.TYPE_KEY, sandboxId)
                .askWithStatus(SandboxEntity.Close::new, settings.askTimeout());
    }

    /** The sandbox as its entity knows it (status NONE when it was never created). */
    public CompletionStage<SandboxView> sandbox(String sandboxId) {
        try {
            checkSandboxId(sandboxId);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        return sharding.entityRefFor(SandboxEntity.TYPE_KEY, sandboxId)
                .ask(SandboxEntity.GetView::new, settings.askTimeout());
    }

    /** What the cluster knows of a sandbox-less execution, by its idempotency key. */
    public CompletionStage<ExecutionEntity.ExecutionView> execution(String idempotencyKey) {
        return execution(Optional.empty(), idempotencyKey);
    }

    /**
     * What the cluster knows of the execution with this key, in the sandbox when one is named (its
     * sandbox's entity: running, waiting behind another, or ended with a reply it still remembers,
     * {@code agentexec.cluster.sandbox.remembered-results}), else the sandbox-less one's.
     */
    public CompletionStage<ExecutionEntity.ExecutionView> execution(Optional<String> sandboxId, String idempotencyKey) {
        try {
            checkIdempotencyKey(idempotencyKey);
            sandboxId.ifPresent(AgentexecCluster::checkSandboxId);
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        if (sandboxId.isPresent()) {
            return sharding.entityRefFor(SandboxEntity.TYPE_KEY, sandboxId.get())
                    .ask(replyTo -> new SandboxEntity.InspectExecution(idempotencyKey, replyTo), settings.askTimeout());
        }
        return sharding.entityRefFor(ExecutionEntity.TYPE_KEY, idempotencyKey)
                .ask(ExecutionEntity.Inspect::new, settings.askTimeout());
    }

    /**
     * Records, in the sandbox, that its execution with this key was refused as overloaded after the
     * caller had told its own client it was taken: from then on every node reads that end (through
     * {@link #execution(Optional, String)} and {@link #follow(Optional, String, Duration, Consumer)}).
     * Changes nothing for a key the sandbox knows.
     */
    public CompletionStage<Done> recordRefusal(String sandboxId, String idempotencyKey, String reason) {
        try {
            checkSandboxId(sandboxId);
            checkIdempotencyKey(idempotencyKey);
            Objects.requireNonNull(reason, "reason");
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        return sharding.entityRefFor(SandboxEntity.TYPE_KEY, sandboxId)
                .ask(replyTo -> new SandboxEntity.RecordRefusal(idempotencyKey, reason, replyTo), settings.askTimeout());
    }

    /**
     * Follows the sandbox-less execution with this key, whichever node started it, and never starts
     * one: {@code onOutput} gets its output from now on while it runs (best-effort, as for execute),
     * and the stage completes with its terminal reply: at once when it already ended, a
     * {@link ExecutionOutcome.NotFound} when no execution of this key is known. {@code runTimeout} is the
     * longest one attempt may run (the caller's cap on limits.timeout); the wait allows every attempt.
     */
    public CompletionStage<ExecutionOutcome> follow(String idempotencyKey, Duration runTimeout,
                                                    Consumer<OutputChunk> onOutput) {
        return follow(Optional.empty(), idempotencyKey, runTimeout, onOutput);
    }

    /**
     * As {@link #follow(String, Duration, Consumer)}, for the execution with this key in the sandbox
     * when one is named (one waiting behind another is followed from when it starts).
     */
    public CompletionStage<ExecutionOutcome> follow(Optional<String> sandboxId, String idempotencyKey, Duration runTimeout,
                                                    Consumer<OutputChunk> onOutput) {
        try {
            checkIdempotencyKey(idempotencyKey);
            sandboxId.ifPresent(AgentexecCluster::checkSandboxId);
            Objects.requireNonNull(runTimeout, "runTimeout");
            Objects.requireNonNull(onOutput, "onOutput");
        } catch (RuntimeException e) {
            return CompletableFuture.failedFuture(e);
        }
        // As for execute: a bounded mailbox, so a slow consumer loses chunks rather than memory.
        ActorRef<Object> relay = system.systemActorOf(OutputRelay.create(onOutput), "output-" + UUID.randomUUID(),
                MailboxSelector.bounded(settings.output().subscriberMailbox()));
        Duration timeout = new Deadlines(settings.execution()).outcome(runTimeout);
        CompletionStage<ExecutionOutcome> reply = sandboxId.isPresent()
                ? sharding.entityRefFor(SandboxEntity.TYPE_KEY, sandboxId.get()).ask(replyTo -> new SandboxEntity.WatchExecution(
                        idempotencyKey, Optional.of(relay.<OutputChunk>narrow()), replyTo), timeout)
                : sharding.entityRefFor(ExecutionEntity.TYPE_KEY, idempotencyKey)
                        .ask(replyTo -> new ExecutionEntity.Watch(Optional.of(relay.<OutputChunk>narrow()), replyTo), timeout);
        return reply.whenComplete((r, e) -> relay.tell(OutputRelay.Stop.INSTANCE));
    }

    /** The reachable workers with their last reported load, as this node's placement sees them. */
    public CompletionStage<List<WorkerLoad>> workers() {
        return AskPattern.<Placement.Command, Placement.Workers>ask(placement, Placement.GetWorkers::new,
                settings.askTimeout(), system.scheduler()).thenApply(Placement.Workers::workers);
    }

    /**
     * This node's own worker's load, asked of the worker itself (empty on a node without the worker role): what this
     * node's metrics export, once per worker, rather than every node's view of every worker.
     */
    public CompletionStage<Optional<WorkerLoad>> localWorkerLoad() {
        if (worker.isEmpty()) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        return AskPattern.<ExecutionWorker.Command, WorkerLoad>ask(worker.get(), ExecutionWorker.GetLoad::new,
                settings.askTimeout(), system.scheduler()).thenApply(Optional::of);
    }

    /**
     * This node's one actor system, its journal configured: other modules init their event-sourced,
     * sharded entities on it (through {@link #sharding()}) after {@link #start}.
     */
    public ActorSystem<Void> system() {
        return system;
    }

    /** This node's sharding, where our entities live; other modules init theirs here too. */
    public ClusterSharding sharding() {
        return sharding;
    }

    public ClusterSettings settings() {
        return settings;
    }

    /**
     * The operator's execution policy as this node applies it: the edges (gateway, agents) clamp what they
     * are asked to it; this API and every worker refuse what goes beyond it.
     */
    public JobPolicy policy() {
        return jobPolicy;
    }

    /** This node's engine, when it is a worker. */
    public Optional<SandboxEngine> engine() {
        return engine;
    }

    public Address selfAddress() {
        return Cluster.get(system).selfMember().address();
    }

    /**
     * Drains this node and stops it, as SIGTERM does: the coordinated shutdown with {@link NodeShutdown#DRAIN} (what
     * other modules added to it first: the gateway's drain), then the worker's drain (placement stops choosing it, its
     * queue is handed back, its sandboxes move to other workers with their workspaces, its runs finish, up to
     * {@code worker.drain-timeout}), then sharding hands the entities over and the node leaves. Completes once the node
     * has stopped and its containers are gone. Asking again (or stopping otherwise meanwhile) joins the same stop.
     */
    public CompletionStage<Done> drainAndStop() {
        CompletableFuture<Done> stopped = new CompletableFuture<>();
        shutdown.stop(NodeShutdown.DRAIN).whenComplete((done, failure) -> {
            Thread closer = new Thread(() -> {
                try {
                    close();
                    stopped.complete(Done.getInstance());
                } catch (RuntimeException e) {
                    stopped.completeExceptionally(e);
                }
            }, "agentexec-stop");
            closer.setDaemon(true);
            closer.start();
        });
        return stopped;
    }

    /** The worker's drain, run in its phase of the coordinated shutdown when the stop's reason drains. */
    private CompletionStage<Done> drainWorkerWhenStopping() {
        Optional<CoordinatedShutdown.Reason> reason = shutdown.reason();
        if (!NodeShutdown.drains(reason) || worker.isEmpty()) {
            log.info("node {} stops without draining its worker (reason: {})", selfAddress(),
                    reason.map(Object::toString).orElse("none"));
            return CompletableFuture.completedFuture(Done.getInstance());
        }
        Duration wait = settings.worker().drainTimeout().plus(settings.askTimeout());
        return AskPattern.<ExecutionWorker.Command, ExecutionWorker.DrainReport>ask(worker.get(),
                ExecutionWorker.Drain::new, wait, system.scheduler()).thenApply(report -> Done.getInstance());
    }

    /** This node's worker's drain (not started: SERVING); empty on a node without the worker role. */
    public CompletionStage<Optional<ExecutionWorker.DrainReport>> drainReport() {
        if (worker.isEmpty()) {
            return CompletableFuture.completedFuture(Optional.empty());
        }
        return AskPattern.<ExecutionWorker.Command, ExecutionWorker.DrainReport>ask(worker.get(),
                ExecutionWorker.GetDrainReport::new, settings.askTimeout(), system.scheduler()).thenApply(Optional::of);
    }

    /** How this node stops, and the record of its stop: other modules add their steps here (see {@link NodeShutdown}). */
    public NodeShutdown nodeShutdown() {
        return shutdown;
    }

    /**
     * Stops the node now: leaves the cluster gracefully (handing over shards) without draining its worker (a run still
     * going ends as when a worker dies; {@link #drainAndStop()} drains first), and removes its containers. After a
     * stop begun otherwise (a drain, SIGTERM, a downed node), waits for it and removes the containers.
     */
    @Override
    public void close() {
        system.terminate();
        java.time.Duration bound = system.settings().config().getDuration("agentexec.cluster.close-timeout");
        try {
            system.getWhenTerminated().toCompletableFuture().get(bound.toMillis(), TimeUnit.MILLISECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            // an embedding program must get its thread back; the containers are removed below all the same
            log.error("the actor system of node {} did not terminate within {} of its coordinated shutdown; releasing "
                    + "the engine and returning (agentexec.cluster.close-timeout)", selfAddress(), bound);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (java.util.concurrent.ExecutionException e) {
            log.warn("the actor system of node {} terminated with {}", selfAddress(), e.getCause().toString());
        }
        releaseEngine();
    }

    /**
     * Closes the engine once. Both {@link #close} and the actor system's termination call this; whichever
     * comes second waits for the first to finish, so that close() returns only once the containers are gone.
     */
    private void releaseEngine() {
        if (released.compareAndSet(false, true)) {
            try {
                sessions.ifPresent(SessionTable::close);
                slotThreads.ifPresent(ExecutorService::shutdownNow);
                fileThreads.ifPresent(FileOperationPool::close);
                handoverThreads.ifPresent(ExecutorService::shutdownNow);
                engine.ifPresent(SandboxEngine::close);
            } finally {
                engineReleased.complete(null);
            }
        } else {
            engineReleased.join();
        }
    }

    static void checkSandboxId(String sandboxId) {
        if (sandboxId == null || !SANDBOX_ID.matcher(sandboxId).matches()) {
            throw new InvalidRequestException("a sandbox id is 1 to 128 letters, digits, '.', '_' or '-', "
                    + "starting with a letter or digit; got '" + sandboxId + "'");
        }
    }

    static void checkIdempotencyKey(String key) {
        if (key == null || !IDEMPOTENCY_KEY.matcher(key).matches()) {
            throw new InvalidRequestException("an idempotency key is 1 to 200 letters, digits or ._:~@+=- ; got '"
                    + key + "'");
        }
    }

    static void checkImage(String image) {
        if (image.length() > 255 || !IMAGE.matcher(image).matches()) {
            throw new InvalidRequestException("an image is a Docker reference like python:3.12-slim or "
                    + "registry:5000/team/image:tag; got '" + image + "'");
        }
    }

    /** The engine's own rules for a workspace path: relative, inside, no NUL. */
    static void checkPath(String path) {
        if (path == null) {
            throw new InvalidRequestException("a file path is required");
        }
        FilenameDirective.check(path).ifPresent(problem -> {
            throw new InvalidRequestException(problem);
        });
    }

    private static java.util.concurrent.ThreadFactory daemonThreads(String prefix) {
        AtomicInteger counter = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, prefix + "-" + counter.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }
}
