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
        ExecutorStatsEntity.Event, ExecutorStatsEntity.State> {

    public static final EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "ExecutorStats");

    public sealed interface Command extends CborSerializable {
    }

    public record Record(StatsSample sample, ActorRef<Done> replyTo) implements Command {
    }

    /** Samples a node gathered over its flush interval: one event for them all. */
    public record RecordAll(List<StatsSample> samples, ActorRef<Done> replyTo) implements Command {
        public RecordAll {
            samples = List.copyOf(samples);
        }
    }

    public record Get(Optional<String> executor, ActorRef<StatsReport> replyTo) implements Command {
    }

    /** What the journal holds (the names are in journals and never change). */
    public sealed interface Event extends CborSerializable {
    }

    /** The samples of one flush of a node's (one event for many runs). */
    public record RecordedAll(List<StatsSample> samples) implements Event {
        public RecordedAll {
            samples = List.copyOf(samples);
        }
    }

    /** One sample: written by earlier versions, one per run; still read. */
    public record Recorded(StatsSample sample) implements Event {
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
    public CommandHandlerWithReply<Command, Event, State> commandHandler() {
        return newCommandHandlerWithReplyBuilder().forAnyState()
                .onCommand(Record.class, (state, cmd) -> Effect().persist(new RecordedAll(List.of(cmd.sample())))
                        .thenReply(cmd.replyTo(), s -> Done.getInstance()))
                .onCommand(RecordAll.class, (state, cmd) -> cmd.samples().isEmpty()
                        ? Effect().reply(cmd.replyTo(), Done.getInstance())
                        : Effect().persist(new RecordedAll(cmd.samples())).thenReply(cmd.replyTo(), s -> Done.getInstance()))
                .onCommand(Get.class, (state, cmd) -> Effect().reply(cmd.replyTo(), cmd.executor()
                        .map(e -> StatsReport.ofExecutor(state.samples(), e))
                        .orElseGet(() -> StatsReport.of(state.samples()))))
                .build();
    }

    @Override
    public EventHandler<State, Event> eventHandler() {
        return newEventHandlerBuilder().forAnyState()
                .onEvent(Recorded.class, (state, e) -> appended(state, List.of(e.sample())))
                .onEvent(RecordedAll.class, (state, e) -> appended(state, e.samples()))
                .build();
    }

    /** The state with {@code samples} after its own, the oldest dropped beyond the most kept. */
    private State appended(State state, List<StatsSample> samples) {
        List<StatsSample> next = new ArrayList<>(Math.min(maxSamples, state.samples().size() + samples.size()));
        int drop = Math.max(0, state.samples().size() + samples.size() - maxSamples);
        if (drop < state.samples().size()) {
            next.addAll(state.samples().subList(drop, state.samples().size()));
        }
        List<StatsSample> added = samples.subList(Math.max(0, samples.size() - maxSamples), samples.size());
        next.addAll(added);
        return new State(next);
    }
}
