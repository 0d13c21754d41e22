package io.agentexec.cluster.port.quota;

import io.agentexec.cluster.CborSerializable;
import io.agentexec.cluster.api.SandboxView;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.function.Function;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandlerWithReply;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehaviorWithEnforcedReplies;
import org.apache.pekko.persistence.typed.javadsl.ReplyEffect;
import org.apache.pekko.persistence.typed.javadsl.RetentionCriteria;

/**
 * One tenant's live-sandbox slots, cluster-wide: a sharded, event-sourced entity per tenant, so every
 * gateway node asks the same single writer and a decision is never made on a stale count. A slot is
 * taken under the sandbox's id before the sandbox is created and given back when it is deleted.
 *
 * <p>Slots whose release never came (the sandbox expired idle and its container was reaped, or the
 * gateway node that reserved it died before creating it or before giving it back) are found when
 * they matter: when the tenant is at its limit, each slot's sandbox is asked for its status, and slots
 * of closed or expired sandboxes (and of reservations older than the reservation timeout whose
 * sandbox never came to be) are freed before deciding. The slots survive any gateway node: they are
 * in the journal.
 */
public final class TenantSandboxes
        extends EventSourcedBehaviorWithEnforcedReplies<TenantSandboxes.Command, TenantSandboxes.Event, TenantSandboxes.State> {

    public static final EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "TenantSandboxes");

    // ---- commands

    public sealed interface Command extends CborSerializable {
    }

    /** Takes a slot for {@code sandboxId} unless the tenant holds {@code maxLive} live ones; idempotent per id. */
    public record Reserve(String sandboxId, int maxLive, ActorRef<Decision> replyTo) implements Command {
    }

    /** Gives the slot back (the sandbox was deleted, or its create failed); releasing an unheld one is a no-op. */
    public record Release(String sandboxId, ActorRef<Done> replyTo) implements Command {
    }

    /**
     * The sandbox holds a container again after its slot was freed (it expired, then ran again): it
     * is counted again, past the limit if need be, since it exists; new creates wait until it is gone.
     */
    public record Readmit(String sandboxId) implements Command {
    }

    public record GetHeld(ActorRef<Held> replyTo) implements Command {
    }

    /** The statuses of the slots' sandboxes (those that answered), for the reservation that waited for them. */
    private record Checked(Reserve pending, Map<String, SandboxView.Status> statuses) implements Command {
    }

    // ---- replies

    public sealed interface Decision extends CborSerializable {
        int held();
    }

    public record Granted(int held) implements Decision {
    }

    public record Refused(int held) implements Decision {
    }

    public record Held(List<String> sandboxIds) implements CborSerializable {
    }

    // ---- events

    public sealed interface Event extends CborSerializable {
    }

    public record Reserved(String sandboxId, long atEpochMillis) implements Event {
    }

    public record Released(String sandboxId, String reason) implements Event {
    }

    // ---- state

    /** Slot per sandbox id, with when it was reserved (a reservation whose sandbox never came expires). */
    public record State(Map<String, Long> slots) implements CborSerializable {
        public State {
            slots = Map.copyOf(slots);
        }

        State with(Event event) {
            Map<String, Long> next = new HashMap<>(slots);
            if (event instanceof Reserved r) {
                next.put(r.sandboxId(), r.atEpochMillis());
            } else {
                next.remove(((Released) event).sandboxId());
            }
            return new State(next);
        }
    }

    /**
     * @param statusOf           the status of one of this tenant's sandboxes, by the tenant's own id
     * @param reservationTimeout a reservation whose sandbox does not exist after this is freed
     * @param snapshotEvery      events between snapshots (creates and deletes never stop coming)
     */
    public static Behavior<Command> create(String tenant, Function<String, CompletionStage<SandboxView.Status>> statusOf,
                                           Duration reservationTimeout, int snapshotEvery) {
        return Behaviors.setup(ctx -> new TenantSandboxes(tenant, ctx, statusOf, reservationTimeout, snapshotEvery));
    }

    private final ActorContext<Command> ctx;
    private final Function<String, CompletionStage<SandboxView.Status>> statusOf;
    private final Duration reservationTimeout;
    private final int snapshotEvery;
    /** Transient: statuses are being asked; every other command waits (stashed) so decisions stay in order. */
    private boolean checking;

    private TenantSandboxes(String tenant, ActorContext<Command> ctx,
                            Function<String, CompletionStage<SandboxView.Status>> statusOf, Duration reservationTimeout,
                            int snapshotEvery) {
        super(PersistenceId.of(TYPE_KEY.name(), tenant));
        this.ctx = ctx;
        this.statusOf = statusOf;
        this.reservationTimeout = reservationTimeout;
        this.snapshotEvery = snapshotEvery;
    }

    @Override
    public State emptyState() {
        return new State(Map.of());
    }

    @Override
    public RetentionCriteria retentionCriteria() {
        return RetentionCriteria.snapshotEvery(snapshotEvery, 2);
    }

    @Override
    public EventHandler<State, Event> eventHandler() {
        return newEventHandlerBuilder().forAnyState().onAnyEvent(State::with);
    }

    @Override
    public CommandHandlerWithReply<Command, Event, State> commandHandler() {
        return newCommandHandlerWithReplyBuilder().forAnyState()
                .onCommand(Reserve.class, this::onReserve)
                .onCommand(Release.class, (state, cmd) -> {
                    if (checking) {
                        return Effect().stash();
                    }
                    if (!state.slots().containsKey(cmd.sandboxId())) {
                        return Effect().reply(cmd.replyTo(), Done.getInstance());
                    }
                    return Effect().persist(new Released(cmd.sandboxId(), "released"))
                            .thenReply(cmd.replyTo(), s -> Done.getInstance());
                })
                .onCommand(Readmit.class, (state, cmd) -> {
                    if (checking) {
                        return Effect().stash();
                    }
                    if (state.slots().containsKey(cmd.sandboxId())) {
                        return Effect().noReply();
                    }
                    return Effect().persist(new Reserved(cmd.sandboxId(), System.currentTimeMillis())).thenNoReply();
                })
                .onCommand(GetHeld.class, (state, cmd) -> Effect().reply(cmd.replyTo(),
                        new Held(state.slots().keySet().stream().sorted().toList())))
                .onCommand(Checked.class, this::onChecked)
                .build();
    }

    private ReplyEffect<Event, State> onReserve(State state, Reserve cmd) {
        if (checking) {
            return Effect().stash();
        }
        if (state.slots().containsKey(cmd.sandboxId())) {
            return Effect().reply(cmd.replyTo(), new Granted(state.slots().size()));
        }
        if (state.slots().size() < cmd.maxLive()) {
            return Effect().persist(new Reserved(cmd.sandboxId(), System.currentTimeMillis()))
                    .thenReply(cmd.replyTo(), s -> new Granted(s.slots().size()));
        }
        // At the limit: free what is no longer live before saying no.
        checking = true;
        ctx.pipeToSelf(statuses(state.slots().keySet().stream().toList()),
                (statuses, error) -> new Checked(cmd, statuses == null ? Map.of() : statuses));
        return Effect().noReply();
    }

    private ReplyEffect<Event, State> onChecked(State state, Checked checked) {
        checking = false;
        long now = System.currentTimeMillis();
        List<Event> events = new ArrayList<>();
        state.slots().forEach((id, reservedAt) -> {
            // a sandbox that did not answer keeps its slot: better a refusal than a tenant over its limit
            Optional.ofNullable(checked.statuses().get(id)).flatMap(status -> gone(status, now - reservedAt))
                    .ifPresent(why -> events.add(new Released(id, why)));
        });
        int held = state.slots().size() - events.size();
        Reserve pending = checked.pending();
        Decision decision;
        if (held < pending.maxLive()) {
            events.add(new Reserved(pending.sandboxId(), now));
            decision = new Granted(held + 1);
        } else {
            decision = new Refused(held);
        }
        if (events.isEmpty()) {
            return Effect().none().thenReply(pending.replyTo(), s -> decision).thenUnstashAll();
        }
        return Effect().persist(events).thenReply(pending.replyTo(), s -> decision).thenUnstashAll();
    }

    /** Why a slot is free, if it is: its sandbox was closed, expired (reaped), or never came to be. */
    private Optional<String> gone(SandboxView.Status status, long heldMillis) {
        return switch (status) {
            case CLOSED -> Optional.of("the sandbox is closed");
            case EXPIRED -> Optional.of("the sandbox expired and its container was removed");
            case NONE -> heldMillis > reservationTimeout.toMillis()
                    ? Optional.of("no sandbox was created within " + reservationTimeout) : Optional.empty();
            case ACTIVE -> Optional.empty();
        };
    }

    /** The statuses of these sandboxes, asked all at once; one that fails to answer is left out. */
    private CompletionStage<Map<String, SandboxView.Status>> statuses(List<String> sandboxIds) {
        Map<String, CompletableFuture<Optional<SandboxView.Status>>> asked = new HashMap<>();
        for (String id : sandboxIds) {
            asked.put(id, statusOf.apply(id).toCompletableFuture()
                    .handle((status, error) -> error == null ? Optional.of(status) : Optional.<SandboxView.Status>empty()));
        }
        return CompletableFuture.allOf(asked.values().toArray(new CompletableFuture[0])).thenApply(done -> {
            Map<String, SandboxView.Status> answered = new HashMap<>();
            asked.forEach((id, status) -> status.join().ifPresent(s -> answered.put(id, s)));
            return answered;
        });
    }
}
