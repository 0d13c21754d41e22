package io.agentexec.cluster.execution;

import static io.agentexec.cluster.dispatch.EntityFixture.WAIT;
import static io.agentexec.cluster.dispatch.EntityFixture.accept;
import static io.agentexec.cluster.dispatch.EntityFixture.answer;
import static io.agentexec.cluster.dispatch.EntityFixture.ok;
import static io.agentexec.cluster.dispatch.EntityFixture.request;
import static io.agentexec.cluster.dispatch.EntityFixture.result;
import static io.agentexec.cluster.dispatch.EntityFixture.run;
import static io.agentexec.cluster.dispatch.EntityFixture.submitted;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.ClusterSettings.ExecutionSettings;
import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.CancelReply;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.OutputChunk;
import io.agentexec.cluster.dispatch.EntityFixture;
import io.agentexec.cluster.placement.Placement;
import io.agentexec.cluster.worker.ExecutionWorker;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.apache.pekko.persistence.testkit.javadsl.PersistenceTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The one-off execution's entity alone: commands → events → state, recovery, and every branch of its dispatch
 * (retry, backoff, refusal, capacity wait, lost worker, watchdogs, cancel) with probes for placement and workers.
 */
class ExecutionEntityTest {
    private static final ActorTestKit testKit = EntityFixture.testKit();
    private static final PersistenceTestKit journal = PersistenceTestKit.create(testKit.system());

    private TestProbe<Placement.Command> placement;
    private TestProbe<ClusterSharding.ShardCommand> shard;
    private TestProbe<ExecutionWorker.Command> worker;
    private TestProbe<ExecutionWorker.Command> other;
    private TestProbe<ExecutionOutcome> caller;
    private String key;

    @AfterAll
    static void stop() {
        testKit.shutdownTestKit();
    }

    @BeforeEach
    void probes() {
        placement = testKit.createTestProbe();
        shard = testKit.createTestProbe();
        worker = testKit.createTestProbe();
        other = testKit.createTestProbe();
        caller = testKit.createTestProbe();
        key = EntityFixture.key("exe");
    }

    private EventSourcedBehaviorTestKit<ExecutionEntity.Command, ExecutionEntity.Event, ExecutionEntity.State> entity(
            String key, ExecutionSettings settings) {
        return EventSourcedBehaviorTestKit.create(testKit.system(),
                ExecutionEntity.create(key, shard.ref(), placement.ref(), settings), EntityFixture.serialization());
    }

    private EventSourcedBehaviorTestKit<ExecutionEntity.Command, ExecutionEntity.Event, ExecutionEntity.State> entity(
            ExecutionSettings settings) {
        return entity(key, settings);
    }

    private EventSourcedBehaviorTestKit<ExecutionEntity.Command, ExecutionEntity.Event, ExecutionEntity.State> entity() {
        return entity(EntityFixture.settings());
    }

    /** What the journal holds for this test's key. */
    private List<Object> events() {
        return journal.persistedInStorage("Execution|" + key);
    }

    private String name(TestProbe<?> probe) {
        return EntityFixture.name(testKit, probe.ref());
    }

    private ExecutionWorker.RunOnce execute(
            EventSourcedBehaviorTestKit<ExecutionEntity.Command, ExecutionEntity.Event, ExecutionEntity.State> kit,
            ExecutionRequest request) {
        kit.runCommand(new ExecutionEntity.Execute(request, caller.ref()));
        return (ExecutionWorker.RunOnce) submitted(placement).job();
    }

    // ---- the way it should go

    @Test
    void aJobHandedBackByADrainingWorkerRunsElsewhereWithoutAFailedAttempt() {
        var kit = entity();
        ExecutionWorker.RunOnce first = execute(kit, request("print(1)"));
        accept(first, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(first.jobId()));
        // The worker drains before the job left its queue: nothing ran there.
        answer(first, new ExecutionWorker.HandedBack(first.jobId(), worker.ref(), "draining"));
        Placement.Submit again = submitted(placement);
        assertEquals(Set.of(name(worker)), again.avoid(), "not back to the draining worker");
        ExecutionWorker.RunOnce second = (ExecutionWorker.RunOnce) again.job();
        assertTrue(second.jobId().startsWith(key + "/1/"), "the same attempt number: " + second.jobId());
        assertEquals(new ExecutionEntity.AttemptHandedBack(1, name(worker), "draining"), events().get(2));
        assertTrue(kit.getState().open().isEmpty() && kit.getState().attempts().isEmpty(), kit.getState().toString());

        EntityFixture.run(second, other, ok("1\n"));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(List.of(new Attempt(1, name(other), "completed", true)), done.attempts());
        assertFalse(done.mayHaveRunMoreThanOnce());

        // A worker that hands back a job it never accepted: simply elsewhere, nothing recorded.
        String next = EntityFixture.key("exe");
        var fresh = entity(next, EntityFixture.settings());
        fresh.runCommand(new ExecutionEntity.Execute(request("print(2)"), caller.ref()));
        ExecutionWorker.Job job = submitted(placement).job();
        answer(job, new ExecutionWorker.HandedBack(job.jobId(), worker.ref(), "draining"));
        assertEquals(Set.of(name(worker)), submitted(placement).avoid());
        assertTrue(journal.persistedInStorage("Execution|" + next).isEmpty());
    }

    @Test
    void persistsTheStartBeforeTheCodeRunsThenTheOutcomeBeforeItIsSent() {
        var kit = entity();
        ExecutionRequest request = request("print(1)");
        kit.runCommand(new ExecutionEntity.Execute(request, caller.ref()));
        Placement.Submit submit = submitted(placement);
        ExecutionWorker.RunOnce job = (ExecutionWorker.RunOnce) submit.job();
        assertEquals(key, job.executionKey());
        assertTrue(job.awaitProceed(), "persist before run");
        assertEquals(Set.of(), submit.avoid());
        assertTrue(kit.getState().request().isEmpty(), "nothing is recorded before a worker took it");
        assertTrue(kit.runCommand(ExecutionEntity.Inspect::new).reply().dispatching());

        accept(job, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(job.jobId()));
        // The Proceed came only once the start was in the journal.
        List<Object> started = events();
        assertEquals(2, started.size(), started.toString());
        assertEquals(request.limits(), ((ExecutionEntity.Accepted) started.get(0)).request().limits());
        assertEquals(new ExecutionEntity.AttemptStarted(1, name(worker)), started.get(1));
        assertEquals(Optional.of(new ExecutionEntity.OpenAttempt(1, name(worker))), kit.getState().open());

        answer(job, new ExecutionWorker.Started(job.jobId()));
        answer(job, new ExecutionWorker.Finished(job.jobId(), ok("1\n"), false, false));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals("1\n", done.result().stdout());
        assertEquals(List.of(new Attempt(1, name(worker), "completed", true)), done.attempts());
        assertFalse(done.replayed());
        assertEquals(new ExecutionEntity.Finished(done), events().get(2));
        assertEquals(Optional.of(done), kit.getState().outcome());

        // A repeat of the key gets the outcome again, marked replayed; nothing runs again.
        assertEquals(done.asReplayed(), kit.<ExecutionOutcome>runCommand(r -> new ExecutionEntity.Execute(request, r)).reply());
        assertEquals(done.asReplayed(), kit.<ExecutionOutcome>runCommand(r -> new ExecutionEntity.Watch(Optional.empty(), r)).reply());
        assertEquals(CancelReply.Outcome.ALREADY_FINISHED, kit.<CancelReply>runCommand(ExecutionEntity.Cancel::new).reply().outcome());
        placement.expectNoMessage(Duration.ofMillis(200));
    }

    @Test
    void recoversItsOutcomeAfterARestartAndNeverRunsAgain() {
        var kit = entity();
        ExecutionWorker.RunOnce job = execute(kit, request("print(2)"));
        run(job, worker, ok("2\n"));
        ExecutionOutcome done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);

        ExecutionEntity.State recovered = kit.restart().state();
        assertEquals(Optional.of(done), recovered.outcome());
        assertEquals(done.attempts(), recovered.attempts());
        assertEquals(done.asReplayed(), kit.<ExecutionOutcome>runCommand(r -> new ExecutionEntity.Execute(request("print(2)"), r)).reply());
        placement.expectNoMessage(Duration.ofMillis(200));
    }

    @Test
    void theWorkersRefusalUnderThePolicyIsTheRecordedResult() {
        var kit = entity();
        ExecutionWorker.RunOnce job = execute(kit, request("print(3)"));
        answer(job, new ExecutionWorker.Refused(job.jobId(), "memory above the ceiling"));
        ExecutionOutcome.Completed refused = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(Verdict.POLICY_VIOLATION, refused.result().verdict());
        assertEquals(List.of(), refused.attempts());
        List<Object> events = events();
        assertInstanceOf(ExecutionEntity.Accepted.class, events.get(0));
        assertEquals(new ExecutionEntity.Finished(refused), events.get(1));
    }

    // ---- nothing ran, nothing recorded

    @Test
    void whenNoWorkerCanTakeItItIsRefusedAsOverloadedAndTheKeyStaysFree() {
        var kit = entity();
        ExecutionWorker.RunOnce job = execute(kit, request("print(4)"));
        answer(job, new ExecutionWorker.NoCapacity(job.jobId(), "every worker's slots and queue are full"));
        ExecutionOutcome.Overloaded overloaded = caller.expectMessageClass(ExecutionOutcome.Overloaded.class, WAIT);
        assertEquals("every worker's slots and queue are full", overloaded.reason());
        assertEquals(List.of(), events());
        ExecutionEntity.ExecutionView view = kit.runCommand(ExecutionEntity.Inspect::new).reply();
        assertFalse(view.accepted() || view.dispatching() || view.outcome().isPresent(), view.toString());
        shard.expectMessageClass(ClusterSharding.Passivate.class, WAIT);
        // Asking again is a new try.
        kit.runCommand(new ExecutionEntity.Execute(request("print(4)"), caller.ref()));
        submitted(placement);
    }

    @Test
    void anOverloadedWorkerIsAvoidedAndAskedAgainOnlyOnceWhenNoOtherCanTakeIt() {
        var kit = entity();
        ExecutionWorker.RunOnce job = execute(kit, request("print(5)"));
        answer(job, new ExecutionWorker.Overloaded(job.jobId(), worker.ref(), "full"));
        Placement.Submit avoiding = submitted(placement);
        assertEquals(Set.of(name(worker)), avoiding.avoid());
        answer(avoiding.job(), new ExecutionWorker.NoCapacity(avoiding.job().jobId(), "every worker's slots and queue are full"));
        Placement.Submit again = submitted(placement);
        assertEquals(Set.of(), again.avoid(), "the avoided workers are better than none");
        answer(again.job(), new ExecutionWorker.Overloaded(again.job().jobId(), worker.ref(), "still full"));
        Placement.Submit third = submitted(placement);
        answer(third.job(), new ExecutionWorker.NoCapacity(third.job().jobId(), "every worker's slots and queue are full"));
        caller.expectMessageClass(ExecutionOutcome.Overloaded.class, WAIT);
        placement.expectNoMessage(Duration.ofMillis(200));
        assertEquals(List.of(), events());
    }

    // ---- infrastructure failures: retried on another worker

    @Test
    void aSandboxErrorIsRetriedOnAnotherWorkerAndTheRetryIsAnnounced() {
        var kit = entity();
        ExecutionWorker.RunOnce first = execute(kit, request("print(6)"));
        run(first, worker, result(Verdict.SANDBOX_ERROR, "", "the container died"));
        Placement.Submit retry = submitted(placement);
        assertEquals(Set.of(name(worker)), retry.avoid(), "the failed worker is avoided");
        Attempt failed = new Attempt(1, name(worker), "sandbox error: the container died", true);
        assertEquals(new ExecutionEntity.AttemptFailed(failed), events().get(2));
        run(retry.job(), other, ok("6\n"));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(List.of(failed, new Attempt(2, name(other), "completed", true)), done.attempts());
        assertTrue(done.mayHaveRunMoreThanOnce());
        // An answer about the attempt given up changes nothing.
        answer(first, new ExecutionWorker.Finished(first.jobId(), ok("late"), false, false));
        caller.expectNoMessage(Duration.ofMillis(200));
        assertEquals(done, kit.getState().outcome().orElseThrow());
    }

    @Test
    void aContainerThatCouldNotBeMadeIsAnAttemptThatNeverRan() {
        var kit = entity();
        ExecutionWorker.RunOnce first = execute(kit, request("print(7)"));
        accept(first, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(first.jobId()));
        answer(first, new ExecutionWorker.Started(first.jobId()));
        answer(first, new ExecutionWorker.Finished(first.jobId(), result(Verdict.SANDBOX_ERROR, "", "no image"), true, false));
        Placement.Submit retry = submitted(placement);
        run(retry.job(), other, ok("7\n"));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertFalse(done.attempts().get(0).mayHaveRun());
        assertFalse(done.mayHaveRunMoreThanOnce());
    }

    @Test
    void itGivesUpAfterMaxAttemptsWithTheLastResult() {
        var kit = entity();
        ExecutionWorker.Job job = execute(kit, request("print(8)"));
        for (int attempt = 1; attempt <= 3; attempt++) {
            TestProbe<ExecutionWorker.Command> w = testKit.createTestProbe();
            run(job, w, result(Verdict.SANDBOX_ERROR, "", "broken " + attempt));
            if (attempt < 3) {
                job = submitted(placement).job();
            }
        }
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(Verdict.SANDBOX_ERROR, done.result().verdict());
        assertEquals("broken 3", done.result().message());
        assertEquals(3, done.attempts().size());
        placement.expectNoMessage(Duration.ofMillis(200));
    }

    @Test
    void aWorkerLostDuringTheRunIsRetriedElsewhere() {
        var kit = entity();
        ExecutionWorker.RunOnce first = execute(kit, request("print(9)"));
        accept(first, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(first.jobId()));
        answer(first, new ExecutionWorker.Started(first.jobId()));
        worker.stop(); // its node left the cluster
        Placement.Submit retry = submitted(placement);
        assertEquals(Set.of(name(worker)), retry.avoid());
        run(retry.job(), other, ok("9\n"));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(new Attempt(1, name(worker), "worker lost: its node left the cluster", true), done.attempts().get(0));
        assertTrue(done.mayHaveRunMoreThanOnce());
    }

    @Test
    void aWorkerLostBeforeItAnsweredIsRecordedAsAnAttemptThatCouldNotHaveRun() {
        var kit = entity();
        ExecutionWorker.RunOnce first = execute(kit, request("print(10)"));
        answer(first, new ExecutionWorker.Dispatched(first.jobId(), worker.ref()));
        worker.stop();
        Placement.Submit retry = submitted(placement);
        Attempt lost = new Attempt(1, name(worker), "worker lost: its node left the cluster before it answered", false);
        List<Object> events = events();
        assertInstanceOf(ExecutionEntity.Accepted.class, events.get(0));
        assertEquals(List.of(new ExecutionEntity.AttemptStarted(1, name(worker)), new ExecutionEntity.AttemptFailed(lost)),
                events.subList(1, 3));
        run(retry.job(), other, ok("10\n"));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(lost, done.attempts().get(0));
        assertFalse(done.mayHaveRunMoreThanOnce(), "it waited for a Proceed that never came: it did not run");
    }

    @Test
    void aStartedAttemptThatNeverAnswersIsLostAfterItsTimeoutPlusSlack() {
        var kit = entity(EntityFixture.settings(Duration.ofMillis(20), Duration.ofMillis(100), Duration.ofMinutes(5),
                Duration.ofMinutes(5), Duration.ofMinutes(5)));
        ExecutionRequest quick = ExecutionRequest.of("python", "print(11)", EntityFixture.limits().withTimeout(Duration.ofMillis(100)));
        ExecutionWorker.RunOnce first = execute(kit, quick);
        accept(first, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(first.jobId()));
        answer(first, new ExecutionWorker.Started(first.jobId()));
        Placement.Submit retry = submitted(placement);
        ExecutionEntity.AttemptFailed failed = (ExecutionEntity.AttemptFailed) events().get(2);
        assertEquals("worker lost: no answer within PT0.2S of the start", failed.attempt().outcome());
        assertEquals(Set.of(name(worker)), retry.avoid());
    }

    @Test
    void anAttemptQueuedTooLongIsLost() {
        var kit = entity(EntityFixture.settings(Duration.ofMillis(20), Duration.ofMinutes(5), Duration.ofMillis(150),
                Duration.ofMinutes(5), Duration.ofMinutes(5)));
        ExecutionWorker.RunOnce first = execute(kit, request("print(12)"));
        accept(first, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(first.jobId()));
        submitted(placement);
        ExecutionEntity.AttemptFailed failed = (ExecutionEntity.AttemptFailed) events().get(2);
        assertEquals("worker lost: the attempt waited in its queue longer than PT0.15S", failed.attempt().outcome());
    }

    @Test
    void anAcceptedExecutionWaitsForCapacityThenEndsSandboxLost() {
        var kit = entity(EntityFixture.settings(Duration.ofMillis(20), Duration.ofMinutes(5), Duration.ofMinutes(5),
                Duration.ofMillis(400), Duration.ofMinutes(5)));
        ExecutionWorker.RunOnce first = execute(kit, request("print(13)"));
        run(first, worker, result(Verdict.SANDBOX_ERROR, "", "the container died"));
        // Placement finds no worker each time it is asked.
        int[] asked = {0};
        ExecutionOutcome outcome = EntityFixture.refuseEveryJobUntilAnswered(placement, caller, asked);
        ExecutionOutcome.SandboxLost lost = assertInstanceOf(ExecutionOutcome.SandboxLost.class, outcome);
        assertTrue(lost.reason().startsWith("no healthy worker could take the retry within PT0.4S"), lost.reason());
        assertEquals(1, lost.attempts().size());
        assertTrue(asked[0] >= 3, "it asked again with backoff while it waited: " + asked[0]);
    }

    /**
     * A worker lost mid-run while the survivor is full (CI's kill test: one of 50 never ended): the retry finds the
     * survivor overloaded, then no one, waits for capacity, and after each backoff asks every worker again, the full
     * one included, instead of avoiding it until the capacity wait runs out.
     */
    @Test
    void aRetryWaitingForCapacityAsksTheWorkersThatWereFullAgain() {
        var kit = entity();
        ExecutionWorker.RunOnce first = execute(kit, request("print(14)"));
        accept(first, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(first.jobId()));
        answer(first, new ExecutionWorker.Started(first.jobId()));
        worker.stop(); // its node left the cluster
        Placement.Submit retry = submitted(placement);
        assertEquals(Set.of(name(worker)), retry.avoid());
        answer(retry.job(), new ExecutionWorker.Overloaded(retry.job().jobId(), other.ref(), "full"));
        Placement.Submit avoiding = submitted(placement);
        answer(avoiding.job(), new ExecutionWorker.NoCapacity(avoiding.job().jobId(), "every worker's slots and queue are full"));
        Placement.Submit anyone = submitted(placement);
        assertEquals(Set.of(), anyone.avoid(), "the avoided workers are better than none");
        answer(anyone.job(), new ExecutionWorker.Overloaded(anyone.job().jobId(), other.ref(), "still full"));
        Placement.Submit notOther = submitted(placement);
        answer(notOther.job(), new ExecutionWorker.NoCapacity(notOther.job().jobId(), "every worker's slots and queue are full"));
        // It was promised a result: it waits for capacity, and after the backoff every worker is a candidate again.
        Placement.Submit afterWait = submitted(placement);
        assertEquals(Set.of(), afterWait.avoid(), "a worker that was full is asked again after the wait");
        run(afterWait.job(), other, ok("14\n"));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(2, done.attempts().size());
        assertEquals(name(other), done.attempts().get(1).worker());
    }

    // ---- cancellation

    @Test
    void aCancelReachesTheWorkerRunningIt() {
        var kit = entity();
        ExecutionWorker.RunOnce job = execute(kit, request("import time; time.sleep(60)"));
        accept(job, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(job.jobId()));
        CancelReply cancelling = kit.<CancelReply>runCommand(ExecutionEntity.Cancel::new).reply();
        assertEquals(CancelReply.Outcome.CANCELLING, cancelling.outcome());
        worker.expectMessage(WAIT, new ExecutionWorker.CancelJob(job.jobId()));
        answer(job, new ExecutionWorker.Finished(job.jobId(), result(Verdict.CANCELLED, "", "cancelled"), false, false));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(Verdict.CANCELLED, done.result().verdict());
        assertEquals(List.of(new Attempt(1, name(worker), "cancelled", true)), done.attempts());
    }

    @Test
    void aCancelBeforeAnyWorkerTookItIsSentWithTheAcceptance() {
        var kit = entity();
        ExecutionWorker.RunOnce job = execute(kit, request("print(14)"));
        assertEquals(CancelReply.Outcome.CANCELLING, kit.<CancelReply>runCommand(ExecutionEntity.Cancel::new).reply().outcome());
        accept(job, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.CancelJob(job.jobId()));
        // Cancelled before any worker took it, and the worker asked is overloaded: it ends there, nothing ran.
        var another = entity(EntityFixture.key("exe"), EntityFixture.settings());
        another.runCommand(new ExecutionEntity.Execute(request("print(15)"), caller.ref()));
        ExecutionWorker.Job second = submitted(placement).job();
        assertEquals(CancelReply.Outcome.CANCELLING, another.<CancelReply>runCommand(ExecutionEntity.Cancel::new).reply().outcome());
        answer(second, new ExecutionWorker.Overloaded(second.jobId(), other.ref(), "full"));
        assertEquals("cancelled by the caller before any worker took it",
                caller.expectMessageClass(ExecutionOutcome.Overloaded.class, WAIT).reason());
        placement.expectNoMessage(Duration.ofMillis(200));
    }

    @Test
    void aCancelWhileItWaitsToRetryEndsItAtOnce() {
        var kit = entity(EntityFixture.settings(Duration.ofMinutes(1), Duration.ofMinutes(5), Duration.ofMinutes(5),
                Duration.ofMinutes(5), Duration.ofMinutes(5)));
        ExecutionWorker.RunOnce job = execute(kit, request("print(16)"));
        run(job, worker, result(Verdict.SANDBOX_ERROR, "", "the container died"));
        caller.expectNoMessage(Duration.ofMillis(100));
        CancelReply cancelling = kit.<CancelReply>runCommand(ExecutionEntity.Cancel::new).reply();
        assertEquals("cancelled while it waited to retry", cancelling.message());
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(Verdict.CANCELLED, done.result().verdict());
        assertEquals(1, done.attempts().size());
        placement.expectNoMessage(Duration.ofMillis(200));
    }

    @Test
    void anUnknownKeyIsNotFoundAndItsCancelUnknown() {
        var kit = entity(EntityFixture.settings(Duration.ofMillis(20), Duration.ofMinutes(5), Duration.ofMinutes(5),
                Duration.ofMinutes(5), Duration.ofMillis(100)));
        assertInstanceOf(ExecutionOutcome.NotFound.class,
                kit.<ExecutionOutcome>runCommand(r -> new ExecutionEntity.Watch(Optional.empty(), r)).reply());
        assertEquals(CancelReply.Outcome.UNKNOWN, kit.<CancelReply>runCommand(ExecutionEntity.Cancel::new).reply().outcome());
        shard.expectMessageClass(ClusterSharding.Passivate.class, WAIT); // after the linger
        placement.expectNoMessage(Duration.ofMillis(100));
        assertEquals(List.of(), events());
    }

    // ---- output subscribers

    @Test
    void outputSubscribersReachTheWorkerWhetherTheyCameBeforeOrAfterIt() {
        var kit = entity();
        TestProbe<OutputChunk> first = testKit.createTestProbe();
        TestProbe<OutputChunk> early = testKit.createTestProbe();
        TestProbe<OutputChunk> late = testKit.createTestProbe();
        kit.runCommand(new ExecutionEntity.Execute(request("print(17)"), Optional.of(first.ref()), caller.ref()));
        ExecutionWorker.RunOnce job = (ExecutionWorker.RunOnce) submitted(placement).job();
        assertEquals(List.of(first.ref()), job.output());
        // Came after the job left, before a worker took it: sent with the acceptance.
        kit.runCommand(new ExecutionEntity.Watch(Optional.of(early.ref()), caller.ref()));
        accept(job, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Subscribe(job.jobId(), early.ref()));
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(job.jobId()));
        // Came while it runs: sent at once.
        kit.runCommand(new ExecutionEntity.Watch(Optional.of(late.ref()), caller.ref()));
        worker.expectMessage(WAIT, new ExecutionWorker.Subscribe(job.jobId(), late.ref()));
        answer(job, new ExecutionWorker.Finished(job.jobId(), ok("17\n"), false, false));
        ExecutionOutcome done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(done, caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT), "both waiters hear it");
    }

    // ---- recovery in the middle

    @Test
    void aRestartDuringTheRunLosesThatAttemptAndRetriesIt() {
        var kit = entity();
        ExecutionWorker.RunOnce job = execute(kit, request("print(18)"));
        accept(job, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(job.jobId()));

        kit.restart();
        Placement.Submit retry = submitted(placement);
        assertEquals(Set.of(name(worker)), retry.avoid());
        Attempt lost = ((ExecutionEntity.AttemptFailed) events().get(2)).attempt();
        assertEquals("coordinator restarted: the attempt's outcome is unknown", lost.outcome());
        assertTrue(lost.mayHaveRun());
        // A caller of this incarnation (the first went with the old one) hears the end.
        kit.runCommand(new ExecutionEntity.Watch(Optional.empty(), caller.ref()));
        run(retry.job(), other, ok("18\n"));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(2, done.attempts().size());
    }

    @Test
    void aRestartWhileItWaitsToRetryRetries() {
        var kit = entity(EntityFixture.settings(Duration.ofMinutes(1), Duration.ofMinutes(5), Duration.ofMinutes(5),
                Duration.ofMinutes(5), Duration.ofMinutes(5)));
        ExecutionWorker.RunOnce job = execute(kit, request("print(19)"));
        run(job, worker, result(Verdict.SANDBOX_ERROR, "", "the container died"));
        placement.expectNoMessage(Duration.ofMillis(100)); // a minute's backoff
        ExecutionEntity.State recovered = kit.restart().state();
        assertEquals(1, recovered.attempts().size());
        assertTrue(recovered.open().isEmpty());
        // The restarted incarnation waits its own backoff (a minute here): the retry is armed, not lost.
        assertFalse(kit.runCommand(ExecutionEntity.Inspect::new).reply().dispatching());
        assertTrue(kit.runCommand(ExecutionEntity.Inspect::new).reply().accepted());
    }
}
