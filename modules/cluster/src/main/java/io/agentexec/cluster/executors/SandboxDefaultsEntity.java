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
 * One sandbox's executor defaults ({@code TENANT.SANDBOX}; a node's own: {@code SANDBOX}): a sharded, event-sourced
 * entity, so a run in the sandbox through any gateway node gets them, after any restart. Written once, at the
 * sandbox's creation, and only when options were given; a sandbox never written answers none.
 */
public final class SandboxDefaultsEntity extends EventSourcedBehaviorWithEnforcedReplies<SandboxDefaultsEntity.Command,
        SandboxDefaultsEntity.Kept, Optional<ExecutorOptions>> {

    public static final EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "SandboxDefaults");

    public sealed interface Command extends CborSerializable {
    }

    public record Get(ActorRef<Answer> replyTo) implements Command {
    }

    public record Keep(ExecutorOptions options, ActorRef<Done> replyTo) implements Command {
    }

    public record Answer(Optional<ExecutorOptions> options) implements CborSerializable {
    }

    /** The one event: the defaults given at the sandbox's creation (its name is in journals and never changes). */
    public record Kept(ExecutorOptions options) implements CborSerializable {
    }

    private SandboxDefaultsEntity(String id) {
        super(PersistenceId.of(TYPE_KEY.name(), id),
                SupervisorStrategy.restartWithBackoff(Duration.ofMillis(200), Duration.ofSeconds(10), 0.2));
    }

    public static Behavior<Command> create(String id) {
        return new SandboxDefaultsEntity(id);
    }

    @Override
    public Optional<ExecutorOptions> emptyState() {
        return Optional.empty();
    }

    @Override
    public CommandHandlerWithReply<Command, Kept, Optional<ExecutorOptions>> commandHandler() {
        return newCommandHandlerWithReplyBuilder().forAnyState()
                .onCommand(Get.class, (state, cmd) -> Effect().reply(cmd.replyTo(), new Answer(state)))
                .onCommand(Keep.class, (state, cmd) -> Effect().persist(new Kept(cmd.options()))
                        .thenReply(cmd.replyTo(), s -> Done.getInstance()))
                .build();
    }

    @Override
    public EventHandler<Optional<ExecutorOptions>, Kept> eventHandler() {
        return newEventHandlerBuilder().forAnyState()
                .onEvent(Kept.class, (state, e) -> Optional.of(e.options()))
                .build();
    }
}
