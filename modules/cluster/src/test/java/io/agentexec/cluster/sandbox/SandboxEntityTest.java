package io.agentexec.cluster.sandbox;

import static io.agentexec.cluster.dispatch.EntityFixture.WAIT;
import static io.agentexec.cluster.dispatch.EntityFixture.accept;
import static io.agentexec.cluster.dispatch.EntityFixture.answer;
import static io.agentexec.cluster.dispatch.EntityFixture.ok;
import static io.agentexec.cluster.dispatch.EntityFixture.request;
import static io.agentexec.cluster.dispatch.EntityFixture.result;
import static io.agentexec.cluster.dispatch.EntityFixture.run;
import static io.agentexec.cluster.dispatch.EntityFixture.submitted;
import static io.agentexec.cluster.dispatch.EntityFixture.submittedTo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.ClusterSettings.ExecutionSettings;
import io.agentexec.cluster.ClusterSettings.FilesSettings;
import io.agentexec.cluster.ClusterSettings.SandboxSettings;
import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.CancelReply;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.FileReply;
import io.agentexec.cluster.api.SandboxFileException;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.dispatch.EntityFixture;
import io.agentexec.cluster.execution.ExecutionEntity;
import io.agentexec.cluster.placement.Placement;
import io.agentexec.cluster.worker.ExecutionWorker;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import org.apache.pekko.Done;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.actor.testkit.typed.javadsl.TestProbe;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.pattern.StatusReply;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.apache.pekko.persistence.testkit.javadsl.PersistenceTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The sandbox's entity alone: its lifecycle (none, active, expired, closed), executions one at a time on the
 * worker holding its container, what a lost worker or container does to the workspace, cancel, file
 * operations in order with executions, and recovery; probes stand in for placement and the workers.
 */
class SandboxEntityTest {
    private static final ActorTestKit testKit = EntityFixture.testKit();
    private static final PersistenceTestKit journal = PersistenceTestKit.create(testKit.system());
    private static final SandboxSpec SPEC = SandboxSpec.of("python", EntityFixture.limits());

    private TestProbe<Placement.Command> placement;
    private TestProbe<ClusterSharding.ShardCommand> shard;
    private TestProbe<ExecutionWorker.Command> worker;
    private TestProbe<ExecutionWorker.Command> other;
    private TestProbe<ExecutionOutcome> caller;
    private String id;

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
        id = EntityFixture.key("sbx");
    }

    private EventSourcedBehaviorTestKit<SandboxEntity.Command, SandboxEntity.Event, SandboxState> sandbox(
            ExecutionSettings execution, SandboxSettings sandbox, FilesSettings files) {
        return EventSourcedBehaviorTestKit.create(testKit.system(), SandboxEntity.create(id, shard.ref(), placement.ref(),
                sandbox, execution, files), EntityFixture.serialization());
    }

    private EventSourcedBehaviorTestKit<SandboxEntity.Command, SandboxEntity.Event, SandboxState> sandbox() {
        return sandbox(EntityFixture.settings(), new SandboxSettings(Duration.ofMinutes(10), 32),
                new FilesSettings(1 << 20, Duration.ofMinutes(1)));
    }

    /** A created sandbox. */
    private EventSourcedBehaviorTestKit<SandboxEntity.Command, SandboxEntity.Event, SandboxState> created(
            EventSourcedBehaviorTestKit<SandboxEntity.Command, SandboxEntity.Event, SandboxState> kit) {
        StatusReply<SandboxView> view = kit.<StatusReply<SandboxView>>runCommand(r -> new SandboxEntity.Create(SPEC, r)).reply();
        assertTrue(view.isSuccess(), view.toString());
        return kit;
    }

    private List<Object> events() {
        return journal.persistedInStorage("Sandbox|" + id);
    }

    private String name(TestProbe<?> probe) {
        return EntityFixture.name(testKit, probe.ref());
    }

    private ExecutionWorker.RunInSandbox execute(
            EventSourcedBehaviorTestKit<SandboxEntity.Command, SandboxEntity.Event, SandboxState> kit, String key) {
        kit.runCommand(new SandboxEntity.Execute(key, request("print('" + key + "')"), caller.ref()));
        return (ExecutionWorker.RunInSandbox) submitted(placement).job();
    }

    /** A created sandbox whose first execution opened its container on {@code worker}. */
    private EventSourcedBehaviorTestKit<SandboxEntity.Command, SandboxEntity.Event, SandboxState> bound() {
        var kit = created(sandbox());
        run(execute(kit, "first"), worker, ok("first\n"));
        caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(Optional.of(name(worker)), kit.getState().worker());
        return kit;
    }

    // ---- lifecycle

    @Test
    void aSandboxThatDoesNotExistRefusesEverythingAsNotFound() {
        var kit = sandbox();
        ExecutionOutcome outcome = kit.<ExecutionOutcome>runCommand(r -> new SandboxEntity.Execute("k", request("1"), r)).reply();
        assertInstanceOf(ExecutionOutcome.NotFound.class, outcome);
        assertTrue(((ExecutionOutcome.NotFound) outcome).reason().contains("create it first"));
        assertEquals(CancelReply.Outcome.UNKNOWN, kit.<CancelReply>runCommand(r -> new SandboxEntity.Cancel("k", r)).reply().outcome());
        FileReply file = kit.<FileReply>runCommand(r -> new SandboxEntity.ReadFile("a", 10, r)).reply();
        assertEquals(SandboxFileException.Kind.NO_SANDBOX, ((FileReply.Failed) file).kind());
        assertTrue(kit.<StatusReply<SandboxView>>runCommand(SandboxEntity.Close::new).reply().isError());
        assertInstanceOf(ExecutionOutcome.NotFound.class, kit.<ExecutionOutcome>runCommand(
                r -> new SandboxEntity.WatchExecution("k", Optional.empty(), r)).reply());
        assertEquals(Done.getInstance(), kit.<Done>runCommand(r -> new SandboxEntity.RecordRefusal("k", "full", r)).reply());
        assertEquals(SandboxView.Status.NONE, kit.runCommand(SandboxEntity.GetView::new).reply().status());
        assertEquals(List.of(), events());
        placement.expectNoMessage(Duration.ofMillis(100));
    }

    @Test
    void creatingAgainIsANoOpWithTheSameSpecAndRefusedWithAnother() {
        var kit = created(sandbox());
        assertTrue(kit.<StatusReply<SandboxView>>runCommand(r -> new SandboxEntity.Create(SPEC, r)).reply().isSuccess());
        StatusReply<SandboxView> bash = kit.<StatusReply<SandboxView>>runCommand(r -> new SandboxEntity.Create(SPEC.withLanguage("bash"), r)).reply();
        assertTrue(bash.isError() && bash.getError().getMessage().contains("exists with language python"), bash.toString());
        StatusReply<SandboxView> image = kit.<StatusReply<SandboxView>>runCommand(r -> new SandboxEntity.Create(SPEC.withImage("other:1"), r)).reply();
        assertTrue(image.isError() && image.getError().getMessage().contains("exists with image"), image.toString());
        assertEquals(List.of(new SandboxEntity.Created(SPEC)), events());
        assertEquals(SandboxView.Status.ACTIVE, kit.restart().state().status());
    }

    @Test
    void closingRemovesTheContainerAndEndsTheSandbox() {
        var kit = bound();
        SandboxView closed = kit.<StatusReply<SandboxView>>runCommand(SandboxEntity.Close::new).reply().getValue();
        assertEquals(SandboxView.Status.CLOSED, closed.status());
        assertEquals(new Placement.CloseOn(name(worker), id), placement.expectMessageClass(Placement.CloseOn.class, WAIT));
        shard.expectMessageClass(ClusterSharding.Passivate.class, WAIT);
        assertInstanceOf(ExecutionOutcome.Rejected.class,
                kit.<ExecutionOutcome>runCommand(r -> new SandboxEntity.Execute("k", request("1"), r)).reply());
        assertTrue(kit.<StatusReply<SandboxView>>runCommand(r -> new SandboxEntity.Create(SPEC, r)).reply().isError());
        assertEquals(SandboxFileException.Kind.NO_SANDBOX, ((FileReply.Failed) kit.<FileReply>runCommand(
                r -> new SandboxEntity.WriteFile("a", new byte[] {1}, r)).reply()).kind());
        assertTrue(kit.<StatusReply<SandboxView>>runCommand(SandboxEntity.Close::new).reply().isSuccess(), "closing again");
        assertEquals(SandboxView.Status.CLOSED, kit.restart().state().status());
    }

    @Test
    void anIdleSandboxExpiresItsContainerAndTheNextRunSaysTheWorkspaceWasLost() {
        // Idle for 1.5 s: long enough for the steps before it to come first even on a loaded machine.
        var kit = sandbox(EntityFixture.settings(), new SandboxSettings(Duration.ofMillis(1500), 32),
                new FilesSettings(1 << 20, Duration.ofMinutes(1)));
        created(kit);
        run(execute(kit, "first"), worker, ok("first\n"));
        caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(new Placement.CloseOn(name(worker), id), placement.expectMessageClass(Placement.CloseOn.class, WAIT));
        shard.expectMessageClass(ClusterSharding.Passivate.class, WAIT);
        SandboxState expired = kit.getState();
        assertEquals(SandboxView.Status.EXPIRED, expired.status());
        assertTrue(expired.worker().isEmpty());

        ExecutionWorker.RunInSandbox next = execute(kit, "next");
        assertTrue(next.openIfMissing(), "an expired sandbox opens a fresh container, anywhere");
        run(next, other, ok("next\n"));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertTrue(done.workspaceLost().orElse("").contains("expired"), done.toString());
        assertEquals(SandboxView.Status.ACTIVE, kit.getState().status());
        // Unused again: expired again, its new container removed.
        assertEquals(new Placement.CloseOn(name(other), id), placement.expectMessageClass(Placement.CloseOn.class, WAIT));
        shard.expectMessageClass(ClusterSharding.Passivate.class, WAIT);
        assertEquals(2, events().stream().filter(SandboxEntity.Expired.class::isInstance).count());
    }

    // ---- executions

    @Test
    void theFirstExecutionBindsTheSandboxAndTheNextGoesToThatWorker() {
        var kit = created(sandbox());
        ExecutionWorker.RunInSandbox first = execute(kit, "first");
        assertTrue(first.openIfMissing());
        assertTrue(first.awaitProceed());
        accept(first, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(first.jobId()));
        assertEquals(List.of(new SandboxEntity.Created(SPEC), new SandboxEntity.BoundToWorker(name(worker)),
                new SandboxEntity.ExecutionStarted("first", name(worker))), events());
        answer(first, new ExecutionWorker.Finished(first.jobId(), ok("first\n"), false, false));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(new SandboxEntity.ExecutionFinished("first", done), events().get(3));

        kit.runCommand(new SandboxEntity.Execute("second", request("print(2)"), caller.ref()));
        Placement.SubmitTo second = submittedTo(placement);
        assertEquals(name(worker), second.worker());
        assertFalse(((ExecutionWorker.RunInSandbox) second.job()).openIfMissing());
        run(second.job(), worker, ok("2\n"));
        caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(new SandboxEntity.ExecutionStarted("second", name(worker)), events().get(4), "no second binding");
        SandboxView view = kit.runCommand(SandboxEntity.GetView::new).reply();
        assertEquals(2, view.executions());
        // Both are remembered for repeats, and read back after a restart.
        SandboxState recovered = kit.restart().state();
        assertEquals(2, recovered.recent().size());
        assertEquals(Optional.of(name(worker)), recovered.worker());
        ExecutionOutcome again = kit.<ExecutionOutcome>runCommand(r -> new SandboxEntity.Execute("first", request("1"), r)).reply();
        assertEquals(done.asReplayed(), again);
    }

    @Test
    void executionsRunOneAtATimeInOrder() {
        var kit = bound();
        kit.runCommand(new SandboxEntity.Execute("a", request("print('a')"), caller.ref()));
        ExecutionWorker.Job a = submittedTo(placement).job();
        kit.runCommand(new SandboxEntity.Execute("b", request("print('b')"), caller.ref()));
        ExecutionEntity.ExecutionView waiting = kit.<ExecutionEntity.ExecutionView>runCommand(
                r -> new SandboxEntity.InspectExecution("b", r)).reply();
        assertTrue(waiting.accepted() && !waiting.dispatching(), "waiting behind a: " + waiting);
        placement.expectNoMessage(Duration.ofMillis(200));
        run(a, worker, ok("a\n"));
        assertEquals("a\n", caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT).result().stdout());
        ExecutionWorker.Job b = submittedTo(placement).job();
        assertEquals("b", b.executionKey());
        run(b, worker, ok("b\n"));
        assertEquals("b\n", caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT).result().stdout());
    }

    @Test
    void aPinnedWorkerThatIsGoneMeansAFreshContainerElsewhereAnnounced() {
        var kit = bound();
        kit.runCommand(new SandboxEntity.Execute("k", request("print(1)"), caller.ref()));
        ExecutionWorker.Job pinned = submittedTo(placement).job();
        answer(pinned, new ExecutionWorker.WorkerGone(pinned.jobId(), name(worker)));
        ExecutionWorker.RunInSandbox fresh = (ExecutionWorker.RunInSandbox) submitted(placement).job();
        assertTrue(fresh.openIfMissing());
        assertInstanceOf(SandboxEntity.WorkspaceLost.class, events().get(4));
        run(fresh, other, ok("1\n"));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertTrue(done.workspaceLost().orElse("").contains("no longer in the cluster"), done.toString());
        assertEquals(Optional.of(name(other)), kit.getState().worker());
    }

    @Test
    void aContainerMissingOnItsWorkerMeansAFreshOneAnnounced() {
        var kit = bound();
        kit.runCommand(new SandboxEntity.Execute("k", request("print(1)"), caller.ref()));
        ExecutionWorker.Job pinned = submittedTo(placement).job();
        answer(pinned, new ExecutionWorker.SessionMissing(pinned.jobId()));
        run(submitted(placement).job(), worker, ok("1\n"));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertTrue(done.workspaceLost().orElse("").contains("container is gone"), done.toString());
    }

    @Test
    void aContainerThatCouldNotBeMadeIsRetriedElsewhereAsAnAttemptThatNeverRan() {
        var kit = created(sandbox());
        ExecutionWorker.RunInSandbox first = execute(kit, "k");
        accept(first, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(first.jobId()));
        answer(first, new ExecutionWorker.Finished(first.jobId(), result(Verdict.SANDBOX_ERROR, "", "no image"), true, true));
        Placement.Submit retry = submitted(placement);
        assertEquals(Set.of(name(worker)), retry.avoid());
        Attempt failed = new Attempt(1, name(worker), "sandbox error: no image", false);
        assertEquals(new SandboxEntity.AttemptFailed("k", failed), events().get(3));
        assertTrue(kit.getState().worker().isEmpty());
        run(retry.job(), other, ok("1\n"));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(List.of(failed, new Attempt(2, name(other), "completed", true)), done.attempts());
        assertFalse(done.mayHaveRunMoreThanOnce());
        assertEquals(Optional.of(name(other)), kit.getState().worker());
    }

    @Test
    void aSandboxErrorAfterTheCodeStartedIsItsResultNotRetried() {
        var kit = bound();
        kit.runCommand(new SandboxEntity.Execute("k", request("print(1)"), caller.ref()));
        ExecutionWorker.Job job = submittedTo(placement).job();
        run(job, worker, result(Verdict.SANDBOX_ERROR, "", "the agent broke"));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(Verdict.SANDBOX_ERROR, done.result().verdict());
        placement.expectNoMessage(Duration.ofMillis(200));
    }

    @Test
    void aContainerLostDuringTheRunEndsItSandboxLost() {
        var kit = bound();
        kit.runCommand(new SandboxEntity.Execute("k", request("print(1)"), caller.ref()));
        ExecutionWorker.Job job = submittedTo(placement).job();
        accept(job, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(job.jobId()));
        answer(job, new ExecutionWorker.Finished(job.jobId(), result(Verdict.OK, "", "exited"), false, true));
        ExecutionOutcome.SandboxLost lost = caller.expectMessageClass(ExecutionOutcome.SandboxLost.class, WAIT);
        assertTrue(lost.reason().contains("the workspace is lost"), lost.reason());
        assertTrue(kit.getState().worker().isEmpty());
        assertEquals(Optional.of(lost.reason()), kit.getState().workspaceLost());
    }

    @Test
    void aWorkerLostDuringTheRunEndsItSandboxLostAndTheNextRunOpensAFreshContainer() {
        var kit = bound();
        kit.runCommand(new SandboxEntity.Execute("k", request("print(1)"), caller.ref()));
        ExecutionWorker.Job job = submittedTo(placement).job();
        accept(job, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(job.jobId()));
        answer(job, new ExecutionWorker.Started(job.jobId()));
        worker.stop();
        ExecutionOutcome.SandboxLost lost = caller.expectMessageClass(ExecutionOutcome.SandboxLost.class, WAIT);
        assertEquals(List.of(new Attempt(1, name(worker), "worker lost: its node left the cluster", true)), lost.attempts());
        assertEquals(new Placement.CloseOn(name(worker), id), placement.expectMessageClass(Placement.CloseOn.class, WAIT));
        SandboxView view = kit.runCommand(SandboxEntity.GetView::new).reply();
        assertTrue(view.worker().isEmpty() && view.workspaceLostReason().isPresent(), view.toString());

        ExecutionWorker.RunInSandbox next = execute(kit, "next");
        assertTrue(next.openIfMissing());
        run(next, other, ok("fresh\n"));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertTrue(done.workspaceLost().isPresent(), "the next run says the workspace was lost");
    }

    @Test
    void aWorkerLostBeforeItAnsweredEndsItSandboxLost() {
        var kit = created(sandbox());
        ExecutionWorker.RunInSandbox job = execute(kit, "k");
        answer(job, new ExecutionWorker.Dispatched(job.jobId(), worker.ref()));
        worker.stop();
        ExecutionOutcome.SandboxLost lost = caller.expectMessageClass(ExecutionOutcome.SandboxLost.class, WAIT);
        assertFalse(lost.attempts().get(0).mayHaveRun(), "it waited for a Proceed that never came");
        assertTrue(kit.getState().inFlight().isEmpty());
    }

    @Test
    void aStartedRunThatNeverAnswersIsLostWithItsWorkspace() {
        var kit = sandbox(EntityFixture.settings(Duration.ofMillis(20), Duration.ofMillis(100), Duration.ofMinutes(5),
                Duration.ofMinutes(5), Duration.ofMinutes(5)), new SandboxSettings(Duration.ofMinutes(10), 32),
                new FilesSettings(1 << 20, Duration.ofMinutes(1)));
        created(kit);
        kit.runCommand(new SandboxEntity.Execute("k", io.agentexec.sandbox.model.ExecutionRequest.of("python", "1",
                EntityFixture.limits().withTimeout(Duration.ofMillis(100))), caller.ref()));
        ExecutionWorker.Job job = submitted(placement).job();
        accept(job, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(job.jobId()));
        answer(job, new ExecutionWorker.Started(job.jobId()));
        ExecutionOutcome.SandboxLost lost = caller.expectMessageClass(ExecutionOutcome.SandboxLost.class, WAIT);
        assertTrue(lost.reason().startsWith("worker lost: no answer within PT0.2S of the start"), lost.reason());
        assertEquals(new Placement.CloseOn(name(worker), id), placement.expectMessageClass(Placement.CloseOn.class, WAIT));
    }

    @Test
    void anOverloadedBoundWorkerRefusesTheRunAndTheNextOneGoes() {
        var kit = bound();
        kit.runCommand(new SandboxEntity.Execute("a", request("print('a')"), caller.ref()));
        ExecutionWorker.Job a = submittedTo(placement).job();
        kit.runCommand(new SandboxEntity.Execute("b", request("print('b')"), caller.ref()));
        answer(a, new ExecutionWorker.Overloaded(a.jobId(), worker.ref(), "all 4 slots are taken"));
        ExecutionOutcome.Overloaded refused = caller.expectMessageClass(ExecutionOutcome.Overloaded.class, WAIT);
        assertTrue(refused.reason().startsWith("the sandbox's worker is overloaded"), refused.reason());
        assertEquals("b", submittedTo(placement).job().executionKey(), "the one waiting behind goes next");
        assertFalse(events().stream().anyMatch(e -> e instanceof SandboxEntity.ExecutionStarted s && s.executionKey().equals("a")));
    }

    @Test
    void noWorkerForAnUnboundSandboxRefusesTheRunAsOverloaded() {
        var kit = created(sandbox());
        ExecutionWorker.RunInSandbox job = execute(kit, "k");
        answer(job, new ExecutionWorker.NoCapacity(job.jobId(), "no worker is in the cluster"));
        assertEquals("no worker is in the cluster", caller.expectMessageClass(ExecutionOutcome.Overloaded.class, WAIT).reason());
        assertEquals(1, events().size());
        assertTrue(kit.getState().inFlight().isEmpty());
    }

    /**
     * A retry after a container that could not be made finds no worker: the execution was recorded (its failed
     * attempt), so it waits for capacity and then ends SANDBOX_LOST, and the sandbox takes the next execution.
     * Before the dispatch component it was refused as overloaded with its failed attempt left in flight, and
     * every later execution of the sandbox waited behind it until the entity restarted.
     */
    @Test
    void aRetryThatFindsNoWorkerEndsSandboxLostAndDoesNotBlockTheSandbox() {
        var kit = sandbox(EntityFixture.settings(Duration.ofMillis(20), Duration.ofMinutes(5), Duration.ofMinutes(5),
                Duration.ofMillis(300), Duration.ofMinutes(5)), new SandboxSettings(Duration.ofMinutes(10), 32),
                new FilesSettings(1 << 20, Duration.ofMinutes(1)));
        created(kit);
        ExecutionWorker.RunInSandbox first = execute(kit, "k");
        accept(first, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(first.jobId()));
        answer(first, new ExecutionWorker.Finished(first.jobId(), result(Verdict.SANDBOX_ERROR, "", "no image"), true, true));
        ExecutionOutcome outcome = EntityFixture.refuseEveryJobUntilAnswered(placement, caller, new int[1]);
        assertInstanceOf(ExecutionOutcome.SandboxLost.class, outcome);
        placement.expectNoMessage(Duration.ofMillis(200)); // it stopped asking
        assertTrue(kit.getState().inFlight().isEmpty(), "nothing left in flight");
        ExecutionWorker.RunInSandbox next = execute(kit, "next");
        run(next, other, ok("next\n"));
        assertEquals("next\n", caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT).result().stdout());
    }

    // ---- cancellation

    @Test
    void aCancelStopsTheRunningExecutionAndOneWaitingBehindItNeverRuns() {
        var kit = bound();
        kit.runCommand(new SandboxEntity.Execute("running", request("import time; time.sleep(60)"), caller.ref()));
        ExecutionWorker.Job running = submittedTo(placement).job();
        accept(running, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(running.jobId()));
        TestProbe<ExecutionOutcome> waiter = testKit.createTestProbe();
        kit.runCommand(new SandboxEntity.Execute("waiting", request("print('never')"), waiter.ref()));

        assertEquals("cancelled while it waited behind another execution: it will not run",
                kit.<CancelReply>runCommand(r -> new SandboxEntity.Cancel("waiting", r)).reply().message());
        assertEquals(CancelReply.Outcome.CANCELLING,
                kit.<CancelReply>runCommand(r -> new SandboxEntity.Cancel("running", r)).reply().outcome());
        worker.expectMessage(WAIT, new ExecutionWorker.CancelJob(running.jobId()));
        answer(running, new ExecutionWorker.Finished(running.jobId(), result(Verdict.CANCELLED, "", "cancelled"), false, false));
        assertEquals(Verdict.CANCELLED, caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT).result().verdict());
        ExecutionOutcome.Completed never = waiter.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(Verdict.CANCELLED, never.result().verdict());
        assertEquals(List.of(), never.attempts());
        placement.expectNoMessage(Duration.ofMillis(200));
        assertEquals(CancelReply.Outcome.ALREADY_FINISHED,
                kit.<CancelReply>runCommand(r -> new SandboxEntity.Cancel("waiting", r)).reply().outcome());
        assertEquals(CancelReply.Outcome.UNKNOWN,
                kit.<CancelReply>runCommand(r -> new SandboxEntity.Cancel("other", r)).reply().outcome());
    }

    @Test
    void aCancelledRunThatWasToOpenTheContainerLeavesTheSandboxUnbound() {
        var kit = created(sandbox());
        ExecutionWorker.RunInSandbox job = execute(kit, "k");
        accept(job, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(job.jobId()));
        kit.runCommand(new SandboxEntity.Cancel("k", testKit.<CancelReply>createTestProbe().ref()));
        worker.expectMessage(WAIT, new ExecutionWorker.CancelJob(job.jobId()));
        answer(job, new ExecutionWorker.Finished(job.jobId(), result(Verdict.CANCELLED, "", "cancelled before it started"),
                true, true));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertFalse(done.attempts().get(0).mayHaveRun());
        assertTrue(kit.getState().worker().isEmpty(), "no container was opened");
    }

    // ---- other nodes: inspect, watch, recorded refusals

    @Test
    void otherNodesInspectWatchAndRecordARefusal() {
        var kit = bound();
        kit.runCommand(new SandboxEntity.Execute("k", request("print(1)"), caller.ref()));
        ExecutionWorker.Job job = submittedTo(placement).job();
        ExecutionEntity.ExecutionView dispatching = kit.<ExecutionEntity.ExecutionView>runCommand(
                r -> new SandboxEntity.InspectExecution("k", r)).reply();
        assertTrue(dispatching.dispatching() && !dispatching.accepted(), dispatching.toString());
        TestProbe<ExecutionOutcome> follower = testKit.createTestProbe();
        kit.runCommand(new SandboxEntity.WatchExecution("k", Optional.empty(), follower.ref()));
        run(job, worker, ok("1\n"));
        ExecutionOutcome.Completed done = caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals(done, follower.expectMessageClass(ExecutionOutcome.Completed.class, WAIT));
        assertEquals(Optional.of(done), kit.<ExecutionEntity.ExecutionView>runCommand(
                r -> new SandboxEntity.InspectExecution("k", r)).reply().outcome());

        kit.<Done>runCommand(r -> new SandboxEntity.RecordRefusal("refused", "every worker's slots and queue are full", r));
        assertEquals(new SandboxEntity.ExecutionRefused("refused", "every worker's slots and queue are full"),
                events().get(events().size() - 1));
        assertInstanceOf(ExecutionOutcome.Overloaded.class, kit.<ExecutionOutcome>runCommand(
                r -> new SandboxEntity.WatchExecution("refused", Optional.empty(), r)).reply());
        // A key it knows is not marked refused.
        kit.<Done>runCommand(r -> new SandboxEntity.RecordRefusal("k", "full", r));
        assertInstanceOf(ExecutionOutcome.Completed.class, kit.<ExecutionOutcome>runCommand(
                r -> new SandboxEntity.WatchExecution("k", Optional.empty(), r)).reply());
        assertInstanceOf(ExecutionOutcome.NotFound.class, kit.<ExecutionOutcome>runCommand(
                r -> new SandboxEntity.WatchExecution("never", Optional.empty(), r)).reply());
    }

    // ---- files

    @Test
    void aWriteOpensTheContainerAndAReadComesBackFromIt() {
        var kit = created(sandbox());
        FileReply nothing = kit.<FileReply>runCommand(r -> new SandboxEntity.ReadFile("a.txt", 10, r)).reply();
        assertEquals(SandboxFileException.Kind.NOT_FOUND, ((FileReply.Failed) nothing).kind());

        TestProbe<FileReply> writer = testKit.createTestProbe();
        kit.runCommand(new SandboxEntity.WriteFile("a.txt", new byte[] {1, 2}, writer.ref()));
        Placement.SubmitFileOp op = placement.expectMessageClass(Placement.SubmitFileOp.class, WAIT);
        assertEquals(Optional.empty(), op.worker());
        assertTrue(op.op().openIfMissing());
        op.op().replyTo().tell(new ExecutionWorker.FileDone(op.op().opId(), worker.ref(), new FileReply.Written("a.txt", 2),
                true, false));
        assertEquals(new FileReply.Written("a.txt", 2), writer.expectMessageClass(FileReply.Written.class, WAIT));
        assertEquals(new SandboxEntity.BoundToWorker(name(worker)), events().get(1));

        TestProbe<FileReply> reader = testKit.createTestProbe();
        kit.runCommand(new SandboxEntity.ReadFile("a.txt", 10, reader.ref()));
        Placement.SubmitFileOp read = placement.expectMessageClass(Placement.SubmitFileOp.class, WAIT);
        assertEquals(Optional.of(name(worker)), read.worker());
        read.op().replyTo().tell(new ExecutionWorker.FileDone(read.op().opId(), worker.ref(),
                new FileReply.Content("a.txt", new byte[] {1, 2}), false, false));
        reader.expectMessageClass(FileReply.Content.class, WAIT);
        assertEquals(2, events().size());
    }

    @Test
    void aFileWrittenBeforeARunIsThereForItAndOneAfterWaitsForIt() {
        var kit = bound();
        TestProbe<FileReply> writer = testKit.createTestProbe();
        kit.runCommand(new SandboxEntity.WriteFile("before.txt", new byte[] {1}, writer.ref()));
        Placement.SubmitFileOp before = placement.expectMessageClass(Placement.SubmitFileOp.class, WAIT);
        kit.runCommand(new SandboxEntity.Execute("k", request("print(open('before.txt').read())"), caller.ref()));
        placement.expectNoMessage(Duration.ofMillis(200)); // the run waits for the write
        before.op().replyTo().tell(new ExecutionWorker.FileDone(before.op().opId(), worker.ref(),
                new FileReply.Written("before.txt", 1), false, false));
        writer.expectMessageClass(FileReply.Written.class, WAIT);
        ExecutionWorker.Job job = submittedTo(placement).job();
        kit.runCommand(new SandboxEntity.WriteFile("after.txt", new byte[] {2}, writer.ref()));
        placement.expectNoMessage(Duration.ofMillis(200)); // the write waits for the run
        run(job, worker, ok("\u0001\n"));
        caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        assertEquals("after.txt", placement.expectMessageClass(Placement.SubmitFileOp.class, WAIT).op().path());
    }

    @Test
    void aFileOperationTheWorkerNeverAnswersClosesTheContainerAsBroken() {
        var kit = sandbox(EntityFixture.settings(), new SandboxSettings(Duration.ofMinutes(10), 32),
                new FilesSettings(1 << 20, Duration.ofMillis(200)));
        created(kit);
        run(execute(kit, "first"), worker, ok(""));
        caller.expectMessageClass(ExecutionOutcome.Completed.class, WAIT);
        TestProbe<FileReply> reader = testKit.createTestProbe();
        kit.runCommand(new SandboxEntity.ReadFile("fifo", 10, reader.ref()));
        placement.expectMessageClass(Placement.SubmitFileOp.class, WAIT);
        FileReply.Failed failed = reader.expectMessageClass(FileReply.Failed.class, WAIT);
        assertEquals(SandboxFileException.Kind.FAILED, failed.kind());
        assertTrue(failed.message().contains("closed as broken"), failed.message());
        assertEquals(new Placement.CloseOn(name(worker), id), placement.expectMessageClass(Placement.CloseOn.class, WAIT));
        assertTrue(kit.getState().worker().isEmpty());
        FileReply gone = kit.<FileReply>runCommand(r -> new SandboxEntity.ReadFile("a", 10, r)).reply();
        assertEquals(SandboxFileException.Kind.WORKSPACE_LOST, ((FileReply.Failed) gone).kind());
    }

    @Test
    void aWriteWhoseWorkerIsGoneOpensAFreshContainerElsewhere() {
        var kit = bound();
        TestProbe<FileReply> writer = testKit.createTestProbe();
        kit.runCommand(new SandboxEntity.WriteFile("a.txt", new byte[] {1}, writer.ref()));
        Placement.SubmitFileOp pinned = placement.expectMessageClass(Placement.SubmitFileOp.class, WAIT);
        pinned.op().replyTo().tell(new ExecutionWorker.WorkerGone(pinned.op().opId(), name(worker)));
        Placement.SubmitFileOp anywhere = placement.expectMessageClass(Placement.SubmitFileOp.class, WAIT);
        assertEquals(Optional.empty(), anywhere.worker());
        anywhere.op().replyTo().tell(new ExecutionWorker.FileDone(anywhere.op().opId(), other.ref(),
                new FileReply.Written("a.txt", 1), true, false));
        writer.expectMessageClass(FileReply.Written.class, WAIT);
        assertEquals(Optional.of(name(other)), kit.getState().worker());
        assertTrue(kit.getState().workspaceLost().isPresent(), "the next run announces the loss");
    }

    // ---- recovery in the middle

    @Test
    void aRestartDuringTheRunEndsItSandboxLost() {
        var kit = bound();
        kit.runCommand(new SandboxEntity.Execute("k", request("print(1)"), caller.ref()));
        ExecutionWorker.Job job = submittedTo(placement).job();
        accept(job, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(job.jobId()));
        kit.restart();
        assertEquals(new Placement.CloseOn(name(worker), id), placement.expectMessageClass(Placement.CloseOn.class, WAIT));
        ExecutionOutcome outcome = kit.<ExecutionOutcome>runCommand(
                r -> new SandboxEntity.WatchExecution("k", Optional.empty(), r)).reply();
        assertInstanceOf(ExecutionOutcome.SandboxLost.class, outcome);
        assertTrue(((ExecutionOutcome.SandboxLost) outcome).reason().startsWith("coordinator restarted"), outcome.toString());
        assertTrue(kit.getState().worker().isEmpty());
    }

    @Test
    void aRestartWhileARetryWaitsEndsItBecauseItsRequestWasNotRecorded() {
        var kit = sandbox(EntityFixture.settings(Duration.ofMinutes(1), Duration.ofMinutes(5), Duration.ofMinutes(5),
                Duration.ofMinutes(5), Duration.ofMinutes(5)), new SandboxSettings(Duration.ofMinutes(10), 32),
                new FilesSettings(1 << 20, Duration.ofMinutes(1)));
        created(kit);
        ExecutionWorker.RunInSandbox job = execute(kit, "k");
        accept(job, worker);
        worker.expectMessage(WAIT, new ExecutionWorker.Proceed(job.jobId()));
        answer(job, new ExecutionWorker.Finished(job.jobId(), result(Verdict.SANDBOX_ERROR, "", "no image"), true, true));
        assertEquals("", kit.getState().inFlight().orElseThrow().worker(), "waiting to retry");
        kit.restart();
        ExecutionOutcome outcome = kit.<ExecutionOutcome>runCommand(
                r -> new SandboxEntity.WatchExecution("k", Optional.empty(), r)).reply();
        assertEquals("the coordinating node stopped before the execution could start",
                ((ExecutionOutcome.SandboxLost) outcome).reason());
        assertEquals(1, outcome.attempts().size());
    }
}
