package io.agentexec.gateway.cluster;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntSupplier;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.actor.typed.receptionist.ServiceKey;

/**
 * How many gateway nodes serve the API now: each registers with the cluster's receptionist and
 * counts the reachable registrations (its own included). A node that leaves, dies or becomes
 * unreachable drops out of the count; the tenants' request rates are shared by this count.
 * Only the registration crosses the network, never a message to these actors.
 */
public final class GatewayPeers implements IntSupplier {
    /** Local messages only. */
    public sealed interface Command {
    }

    private record Changed(Receptionist.Listing listing) implements Command {
    }

    static final ServiceKey<Command> KEY = ServiceKey.create(Command.class, "agentexec-gateway-nodes");

    // this node alone until the receptionist answers
    private final AtomicInteger reachable = new AtomicInteger(1);

    private GatewayPeers() {
    }

    public static GatewayPeers start(ActorSystem<?> system) {
        GatewayPeers peers = new GatewayPeers();
        system.systemActorOf(peers.behavior(), "gateway-peers", Props.empty());
        return peers;
    }

    private Behavior<Command> behavior() {
        return Behaviors.setup(ctx -> {
            ActorRef<Receptionist.Listing> listings = ctx.messageAdapter(Receptionist.Listing.class, Changed::new);
            ctx.getSystem().receptionist().tell(Receptionist.register(KEY, ctx.getSelf()));
            ctx.getSystem().receptionist().tell(Receptionist.subscribe(KEY, listings));
            return Behaviors.receive(Command.class)
                    .onMessage(Changed.class, changed -> {
                        // getServiceInstances: the reachable ones only (getAllServiceInstances has the rest)
                        reachable.set(Math.max(1, changed.listing().getServiceInstances(KEY).size()));
                        return Behaviors.same();
                    })
                    .build();
        });
    }

    /** Reachable gateway nodes, this one included (at least 1). */
    @Override
    public int getAsInt() {
        return reachable.get();
    }
}
