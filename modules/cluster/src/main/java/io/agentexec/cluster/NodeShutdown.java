package io.agentexec.cluster;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigValueFactory;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Supplier;
import org.apache.pekko.Done;
import org.apache.pekko.actor.CoordinatedShutdown;
import org.apache.pekko.actor.typed.ActorSystem;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The order a node stops in, fixed here, and the record of each stop. A node always stops through pekko's
 * coordinated shutdown, whoever stops it: SIGTERM (pekko's JVM shutdown hook), the admin route and
 * {@link AgentexecCluster#drainAndStop()} ({@link #DRAIN}), a node downed by the split-brain resolver, or
 * {@link AgentexecCluster#close()}. Its phases run one after the other, each once the one before is done; agentexec's
 * steps go into these, in this order:
 * <ol>
 *   <li>{@link #GATEWAY_DRAIN} ({@code service-requests-done}): the gateway stops taking requests and finishes those in
 *       flight (its own {@code drain-timeout});</li>
 *   <li>{@link #SERVICES_STOP} ({@code service-stop}): the agents and the execution port;</li>
 *   <li>{@link #WORKER_DRAIN} ({@code before-cluster-shutdown}): the worker drains: placement stops choosing it, its
 *       queue is handed back, its sandboxes move with their workspaces, its runs finish
 *       ({@code agentexec.cluster.worker.drain-timeout});</li>
 * </ol>
 * then pekko's own: sharding hands the node's entities to the other nodes ({@code cluster-sharding-shutdown-region}),
 * the node leaves ({@code cluster-leave}, {@code cluster-exiting}, ...) and the actor system terminates. Each phase's
 * timeout is its drain's plus {@link #PHASE_SLACK} ({@link #withGatewayDrain}, {@link #withWorkerDrain}), set before
 * the actor system starts. {@link #steps()} records when each step started and ended (the two pekko phases that
 * follow too), for operators (the admin route shows it) and for the test that holds the order.
 */
public final class NodeShutdown {
    private static final Logger log = LoggerFactory.getLogger(NodeShutdown.class);

    public static final String GATEWAY_DRAIN = CoordinatedShutdown.PhaseServiceRequestsDone();
    public static final String SERVICES_STOP = CoordinatedShutdown.PhaseServiceStop();
    public static final String WORKER_DRAIN = CoordinatedShutdown.PhaseBeforeClusterShutdown();
    /** pekko's phases after ours, recorded as markers: sharding's hand-over, then leaving the cluster. */
    public static final String SHARDING_HANDOFF = CoordinatedShutdown.PhaseClusterShardingShutdownRegion();
    public static final String CLUSTER_LEAVE = CoordinatedShutdown.PhaseClusterLeave();
    /** What a phase's timeout adds to the drain it waits for: the drain's last poll, its answer, a gateway's unbind. */
    public static final Duration PHASE_SLACK = Duration.ofSeconds(15);

    /** The reason of a stop that drains, asked for by the admin route, the node's owner or NodeMain. */
    public static final CoordinatedShutdown.Reason DRAIN = new DrainReason();

    private static final class DrainReason implements CoordinatedShutdown.Reason {
        @Override
        public String toString() {
            return "drain";
        }
    }

    /** One step of a stop: when it started and ended (empty: not yet), and why it failed, if it did. */
    public record Step(String name, String phase, Instant started, Optional<Instant> ended, Optional<String> failure) {
    }

    private final ActorSystem<?> system;
    private final List<Step> steps = new ArrayList<>();

    private NodeShutdown(ActorSystem<?> system) {
        this.system = system;
    }

    /** The record of {@code system}'s stop, with the markers of pekko's phases after ours. */
    public static NodeShutdown attach(ActorSystem<?> system) {
        NodeShutdown shutdown = new NodeShutdown(system);
        shutdown.add(SHARDING_HANDOFF, "sharding hand-over", () -> CompletableFuture.completedFuture(Done.getInstance()));
        shutdown.add(CLUSTER_LEAVE, "cluster leave", () -> CompletableFuture.completedFuture(Done.getInstance()));
        return shutdown;
    }

    /**
     * Whether a stop for this reason drains the worker: SIGTERM (the JVM's exit), a drain asked for, the node asked to
     * leave. Not {@link AgentexecCluster#close()} (stop now), nor a node downed by the others (it is already out:
     * they treat its sandboxes as lost).
     */
    public static boolean drains(Optional<CoordinatedShutdown.Reason> reason) {
        return reason.filter(r -> r == DRAIN || r == CoordinatedShutdown.jvmExitReason()
                || r == CoordinatedShutdown.clusterLeavingReason()).isPresent();
    }

    /** {@code config} with the gateway drain's phase timeout: the gateway's drain timeout plus the slack. */
    public static Config withGatewayDrain(Config config, Duration gatewayDrain) {
        return withPhaseTimeout(config, GATEWAY_DRAIN, gatewayDrain);
    }

    /** {@code config} with the worker drain's phase timeout: the worker's drain timeout plus the slack. */
    static Config withWorkerDrain(Config config, Duration workerDrain) {
        return withPhaseTimeout(config, WORKER_DRAIN, workerDrain);
    }

    private static Config withPhaseTimeout(Config config, String phase, Duration drain) {
        return config.withValue("pekko.coordinated-shutdown.phases." + phase + ".timeout",
                ConfigValueFactory.fromAnyRef(drain.plus(PHASE_SLACK).toMillis() + "ms"));
    }

    /** Adds a step to {@code phase}: {@code task} runs when the phase comes, recorded and logged. */
    public void add(String phase, String name, Supplier<CompletionStage<Done>> task) {
        CoordinatedShutdown.get(system).addTask(phase, "agentexec-" + name.replace(' ', '-'), () -> {
            int index = record(new Step(name, phase, Instant.now(), Optional.empty(), Optional.empty()));
            log.info("node stopping: {} ({})", name, phase);
            CompletionStage<Done> running;
            try {
                running = task.get();
            } catch (RuntimeException e) {
                running = CompletableFuture.failedFuture(e);
            }
            return running.whenComplete((done, failure) -> {
                Step started = steps().get(index);
                synchronized (steps) {
                    steps.set(index, new Step(name, phase, started.started(), Optional.of(Instant.now()),
                            Optional.ofNullable(failure).map(Throwable::toString)));
                }
                if (failure != null) {
                    log.warn("node stopping: {} failed: {}", name, failure.toString());
                } else {
                    log.info("node stopping: {} done in {} ms", name,
                            Duration.between(started.started(), Instant.now()).toMillis());
                }
            });
        });
    }

    /** Adds a step whose work blocks: it runs on a thread of its own. */
    public void addBlocking(String phase, String name, Runnable work) {
        add(phase, name, () -> CompletableFuture.runAsync(work, r -> {
            Thread thread = new Thread(r, "agentexec-stop-" + name.replace(' ', '-'));
            thread.setDaemon(true);
            thread.start();
        }).thenApply(nothing -> Done.getInstance()));
    }

    /** Stops the node for {@code reason} (once: a stop under way is joined); completes when every phase ran. */
    public CompletionStage<Done> stop(CoordinatedShutdown.Reason reason) {
        return CoordinatedShutdown.get(system).runAll(reason);
    }

    /** Why the node stops, once it does. */
    public Optional<CoordinatedShutdown.Reason> reason() {
        return CoordinatedShutdown.get(system).getShutdownReason();
    }

    /** The steps started so far, in the order they started. */
    public List<Step> steps() {
        synchronized (steps) {
            return List.copyOf(steps);
        }
    }

    private int record(Step step) {
        synchronized (steps) {
            steps.add(step);
            return steps.size() - 1;
        }
    }
}
