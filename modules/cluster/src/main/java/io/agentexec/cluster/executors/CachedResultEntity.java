package io.agentexec.cluster.executors;

import io.agentexec.cluster.CborSerializable;
import java.time.Duration;
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

/**
 * One cached result of one tenant: a sharded, event-sourced entity per cache key ({@code TENANT.KEY}; a node's own
 * runs: {@code KEY}), so the cache is cluster-wide, survives every node, and no entity holds more than one result.
 * A result stored again (after the time to live) replaces the one before.
 */
public final class CachedResultEntity extends EventSourcedBehaviorWithEnforcedReplies<CachedResultEntity.Command,
        CachedResultEntity.Stored, Optional<ResultCache.CachedRun>> {

    public static final EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "ExecutorCache");

    public sealed interface Command extends CborSerializable {
    }

    public record Get(ActorRef<Answer> replyTo) implements Command {
    }

    public record Put(ResultCache.CachedRun run, ActorRef<Done> replyTo) implements Command {
    }

    public record Answer(Optional<ResultCache.CachedRun> run) implements CborSerializable {
    }

    /** The one event: a result stored (its names are in journals and never change). */
    public record Stored(ResultCache.CachedRun run) implements CborSerializable {
    }

    private CachedResultEntity(String id) {
        super(PersistenceId.of(TYPE_KEY.name(), id),
                SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200), Duration.ofSeconds(10), 0.2));
    }

    public static Behavior<Command> create(String id) {
        return new CachedResultEntity(id);
    }

    @Override
    public Optional<ResultCache.CachedRun> emptyState() {
        return Optional.empty();
    }

    @Override
    public CommandHandlerWithReply<Command, Stored, Optional<ResultCache.CachedRun>> commandHandler() {
        return newCommandHandlerWithReplyBuilder().forAnyState()
                .onCommand(Get.class, (state, cmd) -> Effect().reply(cmd.replyTo(), new Answer(state)))
                .onCommand(Put.class, (state, cmd) -> Effect().persist(new Stored(cmd.run()))
                        .thenReply(cmd.replyTo(), s -> Done.getInstance()))
                .build();
    }

    @Override
    public EventHandler<Optional<ResultCache.CachedRun>, Stored> eventHandler() {
        return newEventHandlerBuilder().forAnyState()
                .onEvent(Stored.class, (state, e) -> Optional.of(e.run()))
                .build();
    }
}
