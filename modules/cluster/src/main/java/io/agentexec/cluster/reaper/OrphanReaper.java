package io.agentexec.cluster.reaper;

import io.agentexec.cluster.ClusterSettings.ReaperSettings;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.backend.NodeOwner;
import java.sql.SQLException;
import java.time.Clock;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.PostStop;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.ClusterEvent;
import org.apache.pekko.cluster.UniqueAddress;
import org.apache.pekko.cluster.typed.Cluster;
import org.apache.pekko.cluster.typed.Subscribe;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A worker's reaper of orphaned sandbox containers by cluster membership: it sweeps the Docker daemon its engine uses
 * ({@link SandboxEngine#reapOrphans}) when this node is up, when a node is downed or removed, and every
 * {@code reaper.interval}, judging owners by the membership and the {@link NodeRegistry} ({@link MembershipJudge}).
 * Sweeps run on a thread of their own (they call the daemon and the database), one at a time; requests arriving
 * during one coalesce into one more.
 */
public final class OrphanReaper {
    private static final Logger log = LoggerFactory.getLogger(OrphanReaper.class);
    /** Removed nodes remembered (a few bytes each); older ones are still judged through the registry. */
    private static final int REMEMBERED_REMOVALS = 4096;

    public sealed interface Command {
    }

    private record MembershipChanged(ClusterEvent.MemberEvent event) implements Command {
    }

    private enum Sweep implements Command {
        INSTANCE
    }

    private OrphanReaper() {
    }

    /** The reaper of a worker whose engine works for {@code self}. */
    public static Behavior<Command> create(SandboxEngine engine, NodeOwner self, NodeRegistry registry,
                                           ReaperSettings settings, Clock clock) {
        return Behaviors.setup(context -> Behaviors.withTimers(timers -> {
            Cluster cluster = Cluster.get(context.getSystem());
            Sweeper sweeper = new Sweeper(engine, self, registry, settings, clock, cluster);
            ActorRef<ClusterEvent.MemberEvent> events = context.messageAdapter(ClusterEvent.MemberEvent.class,
                    MembershipChanged::new);
            cluster.subscriptions().tell(Subscribe.create(events, ClusterEvent.MemberEvent.class));
            timers.startTimerWithFixedDelay(Sweep.INSTANCE, settings.interval());
            UniqueAddress me = cluster.selfMember().uniqueAddress();
            return Behaviors.receive(Command.class)
                    .onMessage(MembershipChanged.class, changed -> {
                        ClusterEvent.MemberEvent event = changed.event();
                        if (event instanceof ClusterEvent.MemberUp up && up.member().uniqueAddress().equals(me)) {
                            sweeper.selfUp();
                        } else if (event instanceof ClusterEvent.MemberRemoved removed) {
                            sweeper.removed(removed.member().uniqueAddress());
                        } else if (event instanceof ClusterEvent.MemberDowned) {
                            sweeper.request();
                        }
                        return Behaviors.same();
                    })
                    .onMessage(Sweep.class, tick -> {
                        sweeper.request();
                        return Behaviors.same();
                    })
                    .onSignal(PostStop.class, stop -> {
                        sweeper.close();
                        return Behaviors.same();
                    })
                    .build();
        }));
    }

    /** The sweeps, on their own thread. */
    private static final class Sweeper {
        private final SandboxEngine engine;
        private final NodeOwner self;
        private final NodeRegistry registry;
        private final ReaperSettings settings;
        private final Clock clock;
        private final Cluster cluster;
        private final ExecutorService thread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "agentexec-reaper");
            t.setDaemon(true);
            return t;
        });
        private final AtomicBoolean pending = new AtomicBoolean();
        private final AtomicBoolean upToRecord = new AtomicBoolean();
        private final Set<NodeRegistry.Key> removed = Collections.newSetFromMap(Collections.synchronizedMap(
                new LinkedHashMap<>() {
                    @Override
                    protected boolean removeEldestEntry(Map.Entry<NodeRegistry.Key, Boolean> eldest) {
                        return size() > REMEMBERED_REMOVALS;
                    }
                }));

        Sweeper(SandboxEngine engine, NodeOwner self, NodeRegistry registry, ReaperSettings settings, Clock clock,
                Cluster cluster) {
            this.engine = engine;
            this.self = self;
            this.registry = registry;
            this.settings = settings;
            this.clock = clock;
            this.cluster = cluster;
        }

        void selfUp() {
            upToRecord.set(true);
            request();
        }

        void removed(UniqueAddress node) {
            removed.add(new NodeRegistry.Key(node.address().toString(), node.longUid()));
            request();
        }

        void request() {
            if (pending.compareAndSet(false, true)) {
                try {
                    thread.execute(this::sweep);
                } catch (RejectedExecutionException stopped) {
                    pending.set(false);
                }
            }
        }

        private void sweep() {
            pending.set(false);
            if (upToRecord.get()) {
                try {
                    registry.up(self, clock.millis());
                    upToRecord.set(false);
                } catch (SQLException e) {
                    log.warn("cannot record this worker as up in the journal's agentexec_nodes table (retried at the "
                            + "next sweep): {}", e.getMessage());
                }
            }
            // Only a node that is a full member judges the others: once it is leaving (drained, stopping) or not up
            // yet, its view of the cluster no longer holds them, and it would take every other worker's containers
            // for orphans (seen: a drained worker removed the sandboxes it had just handed over).
            org.apache.pekko.cluster.MemberStatus status = cluster.selfMember().status();
            if (!status.equals(org.apache.pekko.cluster.MemberStatus.up())
                    && !status.equals(org.apache.pekko.cluster.MemberStatus.weaklyUp())) {
                return;
            }
            try {
                Set<NodeRegistry.Key> gone;
                synchronized (removed) {
                    gone = Set.copyOf(removed);
                }
                MembershipJudge judge = new MembershipJudge(cluster.state(), cluster.selfMember(), gone,
                        this::readRegistry, settings.joinGrace(), clock.millis());
                int reaped = engine.reapOrphans(judge);
                if (reaped > 0) {
                    log.info("removed {} sandbox container(s) of nodes that are gone from the cluster", reaped);
                }
            } catch (RuntimeException e) {
                log.warn("sweeping orphaned sandbox containers failed (retried at the next sweep): {}", e.toString());
            }
        }

        private Optional<Map<NodeRegistry.Key, NodeRegistry.Entry>> readRegistry() {
            try {
                return Optional.of(registry.all());
            } catch (SQLException e) {
                log.warn("cannot read the journal's agentexec_nodes table: containers of nodes that left before this "
                        + "one joined are kept until it can be read: {}", e.getMessage());
                return Optional.empty();
            }
        }

        void close() {
            thread.shutdownNow();
        }
    }
}
