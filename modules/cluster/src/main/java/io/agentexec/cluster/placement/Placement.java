package io.agentexec.cluster.placement;

import io.agentexec.cluster.CborSerializable;
import io.agentexec.cluster.worker.ExecutionWorker;
import io.agentexec.cluster.worker.WorkerLoad;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.AbstractBehavior;
import org.apache.pekko.actor.typed.javadsl.ActorContext;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.actor.typed.javadsl.Receive;
import org.apache.pekko.actor.typed.pubsub.Topic;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.apache.pekko.cluster.typed.Cluster;

/**
 * Knows the reachable workers (from the Receptionist) and their load (from the load topic) and
 * sends each job to the worker with the most free capacity. One per node; entities use the one on
 * their own node. The worker stays the authority: when it refuses, the entity asks again avoiding it.
 */
public final class Placement extends AbstractBehavior<Placement.Command> {

    public sealed interface Command extends CborSerializable {
    }

    /** Sends the job to the best worker not in {@code avoid}; answers {@code NoCapacity} to the job's replyTo when none can take it. */
    public record Submit(ExecutionWorker.Job job, Set<String> avoid) implements Command {
    }

    /** Sends the job to one worker (a sandbox stays on its worker); answers {@code WorkerGone} when it is not in the cluster. */
    public record SubmitTo(String worker, ExecutionWorker.Job job) implements Command {
    }

    /**
     * Sends a file operation to one worker (the sandbox's), or, with {@code worker} empty, to the
     * worker with the most free capacity (to open the sandbox's container there). Answers
     * {@code WorkerGone} or {@code NoCapacity} to the operation's replyTo when it cannot go.
     */
    public record SubmitFileOp(Optional<String> worker, ExecutionWorker.FileOp op) implements Command {
    }

    /**
     * Moves a sandbox off the worker {@code from} (a draining one): the worker placement chooses among the others
     * that are not draining gets {@link ExecutionWorker.AdoptSandbox} and fetches the workspace from {@code from}.
     * Answers {@code WorkerGone} to {@code replyTo} when {@code from} is not in the cluster, {@code NoCapacity} when
     * no other worker can take it.
     */
    public record SubmitMove(String from, String opId, String sandboxId, io.agentexec.cluster.api.SandboxSpec spec,
                             ActorRef<ExecutionWorker.Reply> replyTo) implements Command {
    }

    /** Tells the worker to remove a sandbox's container, when that worker is still there. */
    public record CloseOn(String worker, String sandboxId) implements Command {
    }

    public record GetWorkers(ActorRef<Workers> replyTo) implements Command {
    }

    /** True when some reachable worker may take a job: the gateway's cheap admission check before any entity starts. */
    public record HasCapacity(ActorRef<Boolean> replyTo) implements Command {
    }

    /** The reachable workers as this node sees them, with their last reported load. */
    public record Workers(List<WorkerLoad> workers) implements CborSerializable {
    }

    private record ListingChanged(Receptionist.Listing listing) implements Command {
    }

    private record LoadReported(WorkerLoad load) implements Command {
    }

    /**
     * The name a worker is known by in events and replies: its actor path with its node's address,
     * unique per worker incarnation. {@code selfAddress} completes the path of a worker on this node.
     */
    public static String workerName(ActorRef<?> worker, Address selfAddress) {
        return worker.path().address().hasGlobalScope() ? worker.path().toString()
                : worker.path().toStringWithAddress(selfAddress);
    }

    public static Behavior<Command> create(ActorRef<Topic.Command<WorkerLoad>> loadTopic) {
        return Behaviors.setup(ctx -> new Placement(ctx, loadTopic));
    }

    private final Map<String, ActorRef<ExecutionWorker.Command>> workers = new HashMap<>();
    private final Map<String, WorkerLoad> loads = new HashMap<>();
    private final Map<String, Long> listedAt = new HashMap<>();
    private final Address selfAddress;

    private Placement(ActorContext<Command> ctx, ActorRef<Topic.Command<WorkerLoad>> loadTopic) {
        super(ctx);
        this.selfAddress = Cluster.get(ctx.getSystem()).selfMember().address();
        ActorRef<Receptionist.Listing> listingAdapter = ctx.messageAdapter(Receptionist.Listing.class, ListingChanged::new);
        ctx.getSystem().receptionist().tell(Receptionist.subscribe(ExecutionWorker.SERVICE_KEY, listingAdapter));
        loadTopic.tell(Topic.subscribe(ctx.messageAdapter(WorkerLoad.class, LoadReported::new)));
    }

    @Override
    public Receive<Command> createReceive() {
        return newReceiveBuilder()
                .onMessage(ListingChanged.class, this::onListing)
                .onMessage(LoadReported.class, this::onLoad)
                .onMessage(Submit.class, this::onSubmit)
                .onMessage(SubmitTo.class, this::onSubmitTo)
                .onMessage(CloseOn.class, this::onCloseOn)
                .onMessage(SubmitFileOp.class, this::onFileOp)
                .onMessage(SubmitMove.class, this::onMove)
                .onMessage(HasCapacity.class, msg -> {
                    msg.replyTo().tell(choose(Set.of()).isPresent());
                    return this;
                })
                .onMessage(GetWorkers.class, msg -> {
                    List<WorkerLoad> view = new ArrayList<>();
                    workers.forEach((name, ref) -> view.add(loadOf(name, ref)));
                    msg.replyTo().tell(new Workers(List.copyOf(view)));
                    return this;
                })
                .build();
    }

    private Behavior<Command> onListing(ListingChanged changed) {
        // serviceInstances leaves out workers on unreachable nodes: nothing new goes to them.
        Set<ActorRef<ExecutionWorker.Command>> reachable = changed.listing().getServiceInstances(ExecutionWorker.SERVICE_KEY);
        Map<String, ActorRef<ExecutionWorker.Command>> before = Map.copyOf(workers);
        workers.clear();
        reachable.forEach(ref -> workers.put(workerName(ref, selfAddress), ref));
        loads.keySet().retainAll(workers.keySet());
        workers.forEach((name, ref) -> {
            if (!before.containsKey(name)) {
                getContext().getLog().info("worker {} is reachable ({} in all)", name, workers.size());
                listedAt.put(name, System.nanoTime());
            }
        });
        before.keySet().stream().filter(name -> !workers.containsKey(name)).forEach(name -> {
            getContext().getLog().info("worker {} is no longer reachable ({} left)", name, workers.size());
            listedAt.remove(name);
        });
        return this;
    }

    private Behavior<Command> onLoad(LoadReported reported) {
        String name = workerName(reported.load().worker(), selfAddress);
        if (workers.containsKey(name)) {
            if (loads.put(name, reported.load()) == null && listedAt.containsKey(name)) {
                getContext().getLog().info("worker {}: first load report {} ms after it became reachable", name,
                        (System.nanoTime() - listedAt.get(name)) / 1_000_000);
            }
        }
        return this;
    }

    private Behavior<Command> onSubmit(Submit submit) {
        Optional<String> best = choose(submit.avoid());
        if (best.isEmpty()) {
            String reason = workers.isEmpty() ? "no worker is in the cluster"
                    : "every worker's slots and queue are full (or it is draining)";
            submit.job().replyTo().tell(new ExecutionWorker.NoCapacity(submit.job().jobId(), reason));
            return this;
        }
        dispatch(best.get(), submit.job());
        return this;
    }

    private Behavior<Command> onSubmitTo(SubmitTo submit) {
        if (!workers.containsKey(submit.worker())) {
            submit.job().replyTo().tell(new ExecutionWorker.WorkerGone(submit.job().jobId(), submit.worker()));
            return this;
        }
        dispatch(submit.worker(), submit.job());
        return this;
    }

    private Behavior<Command> onFileOp(SubmitFileOp submit) {
        ExecutionWorker.FileOp op = submit.op();
        Optional<String> target = submit.worker().isPresent() ? submit.worker() : choose(Set.of());
        if (target.isEmpty() || !workers.containsKey(target.get())) {
            op.replyTo().tell(submit.worker().isPresent()
                    ? new ExecutionWorker.WorkerGone(op.opId(), submit.worker().get())
                    : new ExecutionWorker.NoCapacity(op.opId(), workers.isEmpty() ? "no worker is in the cluster"
                            : "every worker's slots and queue are full"));
            return this;
        }
        workers.get(target.get()).tell(op);
        return this;
    }

    private Behavior<Command> onMove(SubmitMove move) {
        ActorRef<ExecutionWorker.Command> from = workers.get(move.from());
        if (from == null) {
            move.replyTo().tell(new ExecutionWorker.WorkerGone(move.opId(), move.from()));
            return this;
        }
        Optional<String> target = chooseForMove(move.from());
        if (target.isEmpty()) {
            move.replyTo().tell(new ExecutionWorker.NoCapacity(move.opId(), "no other worker is in the cluster to move "
                    + "the sandbox to (every other one is draining, or there is none)"));
            return this;
        }
        workers.get(target.get()).tell(new ExecutionWorker.AdoptSandbox(move.opId(), move.sandboxId(), move.spec(), from,
                move.replyTo()));
        return this;
    }

    private Behavior<Command> onCloseOn(CloseOn close) {
        ActorRef<ExecutionWorker.Command> worker = workers.get(close.worker());
        if (worker != null) {
            worker.tell(new ExecutionWorker.CloseSandbox(close.sandboxId()));
        }
        return this;
    }

    private void dispatch(String name, ExecutionWorker.Job job) {
        ActorRef<ExecutionWorker.Command> worker = workers.get(name);
        job.replyTo().tell(new ExecutionWorker.Dispatched(job.jobId(), worker));
        worker.tell(job);
        // Count the job until the worker's next report, so a burst spreads instead of piling on one worker.
        WorkerLoad load = loads.get(name);
        if (load == null) {
            return;
        }
        boolean slotFree = load.running() < load.slots();
        loads.put(name, new WorkerLoad(worker, load.running() + (slotFree ? 1 : 0), load.queued() + (slotFree ? 0 : 1),
                load.slots(), load.queueCapacity(), load.sessions(), load.draining()));
    }

    /**
     * Where a sandbox moves: any worker but {@code from} that is not draining, full or not (a sandbox takes no slot
     * until it runs), the one with the most free slots, then the fewest sandboxes; random among equals.
     */
    private Optional<String> chooseForMove(String from) {
        List<String> candidates = new ArrayList<>(workers.keySet());
        candidates.remove(from);
        java.util.Collections.shuffle(candidates, ThreadLocalRandom.current());
        return candidates.stream()
                .filter(name -> !loads.containsKey(name) || !loads.get(name).draining())
                .max(Comparator.<String>comparingInt(name -> loads.containsKey(name) ? loads.get(name).freeSlots() : 1)
                        .thenComparingInt(name -> loads.containsKey(name) ? -loads.get(name).sessions() : 0));
    }

    /**
     * The worker with the most free slots, then the most free queue; random among equals. Unreported workers are
     * tried; draining ones never (their free capacity is none).
     */
    private Optional<String> choose(Set<String> avoid) {
        List<String> candidates = new ArrayList<>(workers.keySet());
        candidates.removeAll(avoid);
        java.util.Collections.shuffle(candidates, ThreadLocalRandom.current());
        return candidates.stream()
                .filter(name -> !loads.containsKey(name) || loads.get(name).freeCapacity() > 0)
                .max(Comparator.<String>comparingInt(name -> loads.containsKey(name) ? loads.get(name).freeSlots() : 1)
                        .thenComparingInt(name -> loads.containsKey(name) ? loads.get(name).freeCapacity() : 1));
    }

    private WorkerLoad loadOf(String name, ActorRef<ExecutionWorker.Command> ref) {
        return loads.getOrDefault(name, new WorkerLoad(ref, 0, 0, 0, 0, 0));
    }
}
