package io.agentexec.cluster.dispatch;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.agentexec.cluster.ClusterSettings;
import io.agentexec.cluster.ClusterSettings.ExecutionSettings;
import io.agentexec.cluster.placement.Placement;
import io.agentexec.cluster.worker.ExecutionWorker;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.List;
import java.util.OptionalInt;
import java.util.OptionalLong;
import java.util.UUID;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;

/**
 * What the entities' unit tests share: an actor system with the in-memory journal of pekko-persistence-testkit,
 * execution settings with short delays, and probes standing in for placement and for workers (a test plays
 * the worker by answering the job placement received, through the job's replyTo).
 */
public final class EntityFixture {
    /** Longer than any delay of {@link #settings}: a message that should come comes within it. */
    public static final Duration WAIT = Duration.ofSeconds(10);

    private EntityFixture() {
    }

    /** The in-memory journal; the cluster's serialization bindings (our reference.conf); no cluster, no remoting. */
    public static ActorTestKit testKit() {
        Config config = ConfigFactory.parseString("""
                pekko.actor.provider = local
                pekko.loglevel = WARNING
                """).withFallback(EventSourcedBehaviorTestKit.config());
        return ActorTestKit.create("entities", config);
    }

    /**
     * Commands and events go through Jackson on every run (as they would to the journal and across nodes);
     * the state is never stored (no snapshots), so it is not checked.
     */
    public static EventSourcedBehaviorTestKit.SerializationSettings serialization() {
        return EventSourcedBehaviorTestKit.enabledSerializationSettings().withVerifyState(false);
    }

    /**
     * Three attempts, persist before run; retries after {@code backoff} (doubling, at most 5x, no random part),
     * the watchdogs' slack and queue limit, the wait for capacity and the linger before passivation as given.
     */
    public static ExecutionSettings settings(Duration backoff, Duration slack, Duration queued, Duration capacityWait,
                                             Duration linger) {
        return new ExecutionSettings(3, new ClusterSettings.Backoff(backoff, backoff.multipliedBy(5), 0.0),
                capacityWait, slack, queued, linger, Duration.ofSeconds(30), true);
    }

    /** Retries after 20 ms; watchdogs, the capacity wait and the linger far away: nothing fires unless a test makes it. */
    public static ExecutionSettings settings() {
        return settings(Duration.ofMillis(20), Duration.ofMinutes(5), Duration.ofMinutes(5), Duration.ofMinutes(5),
                Duration.ofMinutes(5));
    }

    public static String key(String prefix) {
        return prefix + "-" + UUID.randomUUID();
    }

    public static Limits limits() {
        return new Limits(Duration.ofSeconds(5), 64L << 20, 0.5, 32, 1024, 1 << 20);
    }

    public static ExecutionRequest request(String code) {
        return ExecutionRequest.of("python", code, limits());
    }

    public static ExecutionResult result(Verdict verdict, String stdout, String message) {
        return new ExecutionResult(verdict, verdict == Verdict.OK ? 0 : 1, OptionalInt.empty(), stdout, "", stdout,
                false, false, 1, 1, 5, OptionalLong.empty(), List.of(), List.of(), message, "docker", "");
    }

    public static ExecutionResult ok(String stdout) {
        return result(Verdict.OK, stdout, "");
    }

    /** A worker's answer to a job, as the worker sends it. */
    public static void answer(ExecutionWorker.Job job, ExecutionWorker.Reply reply) {
        job.replyTo().tell(reply);
    }

    /** The worker takes the job: placement said where it went, the worker accepted it. */
    public static void accept(ExecutionWorker.Job job, TestProbe<ExecutionWorker.Command> worker) {
        answer(job, new ExecutionWorker.Dispatched(job.jobId(), worker.ref()));
        answer(job, new ExecutionWorker.Accepted(job.jobId(), worker.ref()));
    }

    /** Accepted, told to proceed once the start is persisted, started, finished with {@code result}. */
    public static void run(ExecutionWorker.Job job, TestProbe<ExecutionWorker.Command> worker, ExecutionResult result) {
        accept(job, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(job.jobId()));
        answer(job, new ExecutionWorker.Started(job.jobId()));
        answer(job, new ExecutionWorker.Finished(job.jobId(), result, false, false));
    }

    /** The next job placement was asked to place anywhere, with the workers it was told to avoid. */
    public static Placement.Submit submitted(TestProbe<Placement.Command> placement) {
        return placement.expectMessageClass(Placement.Submit.class, WAIT);
    }

    /** The next job placement was asked to send to one worker. */
    public static Placement.SubmitTo submittedTo(TestProbe<Placement.Command> placement) {
        return placement.expectMessageClass(Placement.SubmitTo.class, WAIT);
    }

    /**
     * Plays a cluster without a free worker: answers every job placement gets with NoCapacity until the caller
     * hears the outcome, which is returned; also how many jobs were refused ({@code asked[0]}).
     */
    public static <T> T refuseEveryJobUntilAnswered(TestProbe<Placement.Command> placement, TestProbe<T> caller,
                                                    int[] asked) {
        long deadline = System.nanoTime() + WAIT.multipliedBy(3).toNanos();
        while (System.nanoTime() < deadline) {
            try {
                return caller.receiveMessage(Duration.ofMillis(20));
            } catch (AssertionError notYet) {
                // keep refusing
            }
            Placement.Command next;
            try {
                next = placement.receiveMessage(Duration.ofMillis(20));
            } catch (AssertionError none) {
                continue;
            }
            ExecutionWorker.Job job = ((Placement.Submit) next).job();
            asked[0]++;
            answer(job, new ExecutionWorker.NoCapacity(job.jobId(), "no worker is in the cluster"));
        }
        throw new AssertionError("no outcome while every job was refused for " + WAIT.multipliedBy(3));
    }

    /** The name events and attempts give a worker of this (local) actor system. */
    public static String name(ActorTestKit kit, ActorRef<?> worker) {
        return Placement.workerName(worker, kit.system().address());
    }

    public static void assertEvents(List<?> expected, List<?> actual) {
        assertEquals(expected.size(), actual.size(), "events " + actual);
        for (int i = 0; i < expected.size(); i++) {
            assertEquals(expected.get(i), actual.get(i), "event " + i + " of " + actual);
        }
    }
}
