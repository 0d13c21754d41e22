package io.agentexec.cluster.executors;

import io.agentexec.cluster.CborSerializable;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.SupervisorStrategy;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReply;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehaviorWithEnforcedReplies;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;

/**
 * One tenant's {@code execution_stats}: a sharded, event-sourced entity per tenant ({@code TENANT.stats}; the node's
 * own runs: {@code stats}) keeping its last runs, whichever node ran them or asks. Snapshotted, with the events
 * before a snapshot deleted, so the journal holds about what the state does.
 */
public final class ExecutorStatsEntity extends EventSourcedBehaviorWithEnforcedReplies<ExecutorStatsEntity.Command,
        ExecutorStatsEntity.Recorded, ExecutorStatsEntity.State> {

    public static final EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "ExecutorStats");

    public sealed interface Command extends CborSerializable {
    }

    public record Record(StatsSample sample, ActorRef<Done> replyTo) implements Command {
    }

    public record Get(Optional<String> executor, ActorRef<StatsReport> replyTo) implements Command {
    }

    /** The one event (its names are in journals and never change). */
    public record Recorded(StatsSample sample) implements CborSerializable {
    }

    /** The kept samples, oldest first. */
    public record State(List<StatsSample> samples) implements CborSerializable {
        public State {
            samples = List.copyOf(samples);
        }
    }

    private final int maxSamples;

    private ExecutorStatsEntity(String id, int maxSamples, int snapshotEvery) {
        super(PersistenceId.of(TYPE_KEY.name(), id),
                SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200), Duration.ofSeconds(10), 0.2));
        this.maxSamples = maxSamples;
        this.snapshotEvery = snapshotEvery;
    }

    private final int snapshotEvery;

    public static Behavior<Command> create(String id, int maxSamples, int snapshotEvery) {
        return new ExecutorStatsEntity(id, maxSamples, snapshotEvery);
    }

    @Override
    public State emptyState() {
        return new State(List.of());
    }

    @Override
    public RetentionCriteria retentionCriteria() {
        return RetentionCriteria.snapshotEvery(snapshotEvery, 2).withDeleteEventsOnSnapshot();
    }

    @Override
    public CommandHandlerWithReply<Command, Recorded, State> commandHandler() {
        return newCommandHandlerWithReplyBuilder().forAnyState()
                .onCommand(Record.class, (state, cmd) -> Effect().persist(new Recorded(cmd.sample()))
                        .thenReply(cmd.replyTo(), s -> Done.getInstance()))
                .onCommand(Get.class, (state, cmd) -> Effect().reply(cmd.replyTo(), cmd.executor()
                        .map(e -> StatsReport.ofExecutor(state.samples(), e))
                        .orElseGet(() -> StatsReport.of(state.samples()))))
                .build();
    }

    @Override
    public EventHandler<State, Recorded> eventHandler() {
        return newEventHandlerBuilder().forAnyState()
                .onEvent(Recorded.class, (state, e) -> {
                    List<StatsSample> next = new ArrayList<>(state.samples().size() + 1);
                    int drop = Math.max(0, state.samples().size() + 1 - maxSamples);
                    next.addAll(state.samples().subList(drop, state.samples().size()));
                    next.add(e.sample());
                    return new State(next);
                })
                .build();
    }
}
