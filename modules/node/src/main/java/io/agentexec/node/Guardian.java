package io.agentexec.node;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.agentexec.agents.AgentRuntime;
import io.agentexec.agents.ConversationFacade;
import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.NodeShutdown;
import io.agentexec.cluster.executors.SeedExecutors;
import io.agentexec.cluster.port.ClusterPort;
import io.agentexec.cluster.port.EnginePort;
import io.agentexec.cluster.port.ExecutionPort;
import io.agentexec.cluster.port.quota.ClusterSandboxQuota;
import io.agentexec.gateway.Gateway;
import io.agentexec.gateway.GatewaySettings;
import io.agentexec.gateway.cluster.GatewayPeers;
import io.agentexec.gateway.spi.ConversationService;
import io.agentexec.gateway.spi.NoConversations;
import io.agentexec.gateway.tenant.TenantGuard;
import io.agentexec.node.conversations.AgentsConversations;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.SandboxEngine;
import java.io.PrintStream;
import java.util.ArrayDeque;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.CompletionStage;
import java.util.function.IntSupplier;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's composition root, in the manner of pekko-samples' killrweather {@code Guardian.create}: the one place
 * that puts a node together from its configuration. It starts, in order,
 * <ol>
 *   <li>the cluster node ({@code AgentexecCluster}: journal, sharding, placement, the worker), or on the engine-only
 *       backend a local actor system;</li>
 *   <li>the execution port over it (the cluster's adapter with the tenants' live-sandbox quota, or this JVM's
 *       {@link EnginePort});</li>
 *   <li>the tenants (keys, rates, policies);</li>
 *   <li>the agents runtime (cluster backend only), its chats' code running through that port on behalf of their
 *       tenants;</li>
 *   <li>the conversations adapter the gateway serves ({@link AgentsConversations}, or {@link NoConversations});</li>
 *   <li>the gateway, given all of the above;</li>
 * </ol>
 * A failure part-way stops what had started, in reverse, and is thrown. Once started, the node stops through its
 * actor system's coordinated shutdown, whoever stops it ({@link Node#close()}, SIGTERM through pekko's JVM hook, the
 * admin route, a downing), in {@link NodeShutdown}'s order, fixed there: the gateway's drain (it stops taking requests
 * and finishes those in flight), then the agents and the port, then the worker's drain (its queue handed back, its
 * sandboxes moved, its runs finished), then the node leaves the cluster.
 *
 * <p>Not an actor behaviour itself: the cluster module creates its own actor system (its guardian is its business),
 * and a node that cannot start must say why to the command that started it, before anything is served.
 */
public final class Guardian {
    private static final Logger log = LoggerFactory.getLogger(Guardian.class);
    /** The engine-only backend's actor system: HTTP only, no cluster, whatever the classpath's reference.conf says. */
    private static final String LOCAL_SYSTEM_NAME = "agentexec-gateway";

    private Guardian() {
    }

    /**
     * Starts the node {@code config} describes (the {@code serve} command's); prints a first API key to
     * {@code console} if it makes one.
     */
    public static Node start(Config config, PrintStream console) {
        GatewaySettings gatewaySettings = GatewaySettings.fromConfig(config);
        EngineSettings engineSettings = EngineSettings.fromConfig(config);
        // refuse a gateway that must not listen as configured before a journal is touched or a container made
        Gateway.checkSettings(gatewaySettings);
        Deque<Stoppable> started = new ArrayDeque<>();
        try {
            Node node = gatewaySettings.backend() == GatewaySettings.BackendKind.ENGINE
                    ? engineNode(config, gatewaySettings, engineSettings, console, started)
                    : clusterNode(config, gatewaySettings, engineSettings, console, started);
            log.info("agentexec node started: {}", node.describe());
            return node;
        } catch (RuntimeException e) {
            stopAll(started);
            throw e;
        }
    }

    private static Node clusterNode(Config config, GatewaySettings settings, EngineSettings engineSettings,
                                    PrintStream console, Deque<Stoppable> started) {
        // the gateway's drain is a step of the node's stop: its phase gets the gateway's drain timeout
        AgentexecCluster cluster = AgentexecCluster.start(NodeShutdown.withGatewayDrain(config, settings.drainTimeout()));
        started.push(new Stoppable("the cluster node", cluster::close));
        ClusterSandboxQuota quota = ClusterSandboxQuota.start(cluster, settings.askTimeout(),
                settings.quotas().reservationTimeout(), settings.quotas().snapshotEvery());
        ClusterPort port = new ClusterPort(cluster, engineSettings.languages(), settings.askTimeout(), quota,
                settings.visibilityPoll().min(), settings.visibilityPoll().max());
        started.push(new Stoppable("the execution port", port::close));
        GatewayPeers peers = GatewayPeers.start(cluster.system());
        TenantGuard tenants = Gateway.tenantGuard(settings, cluster.settings().persistence(), peers, console);
        // the agents share the cluster's actor system and journal; their code runs through the same port, on behalf
        // of the tenant that started the chat (its policy, its live-sandbox quota)
        // one set of the seed's executors for the node: one cache, one set of statistics (GET /v1/stats counts chats too)
        SeedExecutors executors = SeedExecutors.cluster(cluster, config);
        AgentRuntime agents = AgentRuntime.attach(cluster, config, port, tenants.callers(), executors);
        started.push(new Stoppable("the agents", agents::close));
        ConversationService conversations = new AgentsConversations(ConversationFacade.create(agents, config));
        Gateway gateway = withGateway(config, new Gateway.Services(cluster.system(), port, tenants, peers, conversations,
                executors),
                started);
        NodeShutdown shutdown = cluster.nodeShutdown();
        shutdown.addBlocking(NodeShutdown.GATEWAY_DRAIN, "gateway drain", gateway::close);
        shutdown.addBlocking(NodeShutdown.SERVICES_STOP, "agents and execution port", () -> {
            agents.close();
            port.close();
        });
        // the worker's drain and the leave are the cluster's own steps, after these
        return new Node(gateway, port, shutdown, () -> cluster.drainAndStop().toCompletableFuture().join(),
                cluster.system().getWhenTerminated());
    }

    private static Node engineNode(Config config, GatewaySettings settings, EngineSettings engineSettings,
                                   PrintStream console, Deque<Stoppable> started) {
        ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), LOCAL_SYSTEM_NAME, NodeShutdown.withGatewayDrain(
                ConfigFactory.parseString("pekko.actor.provider = local").withFallback(config), settings.drainTimeout()));
        started.push(new Stoppable("the actor system", () -> {
            system.terminate();
            system.getWhenTerminated().toCompletableFuture().join();
        }));
        EnginePort port = new EnginePort(SandboxEngine.start(engineSettings), settings.engineSlots(), settings.engineQueue());
        started.push(new Stoppable("the execution port", port::close));
        // a single node: its registry holds every execution, its memory every sandbox
        IntSupplier gatewayNodes = () -> 1;
        TenantGuard tenants = Gateway.tenantGuard(settings, gatewayNodes, console);
        Gateway gateway = withGateway(config, new Gateway.Services(system, port, tenants, gatewayNodes,
                new NoConversations(), SeedExecutors.local(config)), started);
        NodeShutdown shutdown = NodeShutdown.attach(system);
        shutdown.addBlocking(NodeShutdown.GATEWAY_DRAIN, "gateway drain", gateway::close);
        shutdown.addBlocking(NodeShutdown.SERVICES_STOP, "execution port", port::close);
        return new Node(gateway, port, shutdown, () -> {
            shutdown.stop(NodeShutdown.DRAIN).toCompletableFuture().join();
            system.getWhenTerminated().toCompletableFuture().join();
        }, system.getWhenTerminated());
    }

    private static Gateway withGateway(Config config, Gateway.Services services, Deque<Stoppable> started) {
        Gateway gateway = Gateway.start(config, services);
        started.push(new Stoppable("the gateway", gateway::close));
        return gateway;
    }

    /** Stops each, last started first; one that fails to stop does not keep the others running. */
    static void stopAll(Deque<Stoppable> started) {
        while (!started.isEmpty()) {
            Stoppable s = started.pop();
            try {
                s.stop().run();
            } catch (RuntimeException e) {
                log.warn("stopping {} failed: {}", s.what(), e.toString());
            }
        }
    }

    /** A started part of the node and how to stop it. */
    record Stoppable(String what, Runnable stop) { }

    /** A running node: its gateway and what the gateway serves, stopped in {@link NodeShutdown}'s order. */
    public static final class Node implements AutoCloseable {
        private final Gateway gateway;
        private final ExecutionPort port;
        private final NodeShutdown shutdown;
        private final Runnable stop;
        private final CompletionStage<Done> stopped;

        private Node(Gateway gateway, ExecutionPort port, NodeShutdown shutdown, Runnable stop,
                     CompletionStage<Done> stopped) {
            this.gateway = gateway;
            this.port = port;
            this.shutdown = shutdown;
            this.stop = stop;
            this.stopped = stopped;
        }

        /** Completes when the node has stopped, whoever stopped it (its actor system terminated). */
        public CompletionStage<Done> whenStopped() {
            return stopped;
        }

        /** The steps of the node's stop so far, with when each started and ended. */
        public List<NodeShutdown.Step> shutdownSteps() {
            return shutdown.steps();
        }

        public Gateway gateway() {
            return gateway;
        }

        /** The HTTP port the gateway bound (useful with port 0). */
        public int httpPort() {
            return gateway.httpPort();
        }

        /** Whether this node runs conversations (the agents, on the cluster backend). */
        public boolean conversationsAvailable() {
            return gateway.conversationsAvailable();
        }

        String describe() {
            return "backend " + port.kind() + ", gateway on " + gateway.addresses() + ", conversations "
                    + (gateway.conversationsAvailable() ? "on" : "off");
        }

        /**
         * Stops the node, draining it ({@link NodeShutdown}'s order): the gateway first (it refuses new work and lets
         * what runs finish, up to its drain timeout), then the agents and the port, then the worker's drain and the
         * cluster (or the local actor system). Returns once the node's containers are gone; a stop already under way
         * (SIGTERM, a downing) is joined.
         */
        @Override
        public void close() {
            synchronized (this) {
                stop.run();
            }
        }
    }
}
