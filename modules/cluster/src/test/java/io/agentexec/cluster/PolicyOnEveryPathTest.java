package io.agentexec.cluster;

import static io.agentexec.cluster.TestNodes.await;
import static io.agentexec.cluster.TestNodes.completed;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.worker.ExecutionWorker;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import io.agentexec.sandbox.model.Verdict;
import io.agentexec.sandbox.policy.PolicyViolationException;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.javadsl.AskPattern;
import org.apache.pekko.actor.typed.receptionist.Receptionist;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The operator's execution policy holds on every path into the cluster: its Java API refuses what goes
 * beyond the ceilings, and a worker refuses it again whoever sent it — here a gateway node configured
 * with looser ceilings (standing for an edge that was bypassed or misconfigured) and messages sent
 * straight to the worker's actor. Two nodes on PostgreSQL, real Docker.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class PolicyOnEveryPathTest {
    /** The gateway node lets anything through; the worker holds the operator's default ceilings. */
    private static final String LOOSE = """
            agentexec.policy.max-limits { memory = 64g, cpus = 64, pids = 1000000, timeout = 24h }
            agentexec.policy.allowed-images = ["evil/escape:latest"]
            agentexec.sandbox.docker.allowed-networks = [none, bridge]
            """;

    private String schema;
    private AgentexecCluster gateway;
    private AgentexecCluster worker;
    private Limits limits;

    @BeforeAll
    void start() {
        schema = TestNodes.newSchema();
        int gatewayPort = TestNodes.freePort();
        gateway = TestNodes.start(TestNodes.common(gatewayPort, List.of(gatewayPort), "gateway") + LOOSE
                + TestNodes.postgres(schema));
        worker = TestNodes.start(TestNodes.common(TestNodes.freePort(), List.of(gatewayPort), "worker")
                + "agentexec.policy.max-limits.timeout = 300s\n" + TestNodes.postgres(schema));
        limits = worker.engine().orElseThrow().defaultLimits().withTimeout(Duration.ofSeconds(30));
        TestNodes.awaitWorkers(gateway, 1);
    }

    @AfterAll
    void stop() throws Exception {
        if (worker != null) {
            worker.close();
        }
        if (gateway != null) {
            gateway.close();
        }
        TestNodes.dropSchema(schema);
    }

    private static Limits huge(Limits base) {
        return base.withMemoryBytes(16L << 30).withCpus(64).withPids(1_000_000).withTimeout(Duration.ofHours(24));
    }

    @Test
    void theClusterApiRefusesLimitsAboveTheCeilingsAndImagesNotAllowed() {
        PolicyViolationException e = assertFails(worker.execute(Optional.empty(),
                ExecutionRequest.of("python", "print('ran')", huge(limits)), "api-" + UUID.randomUUID()));
        assertTrue(e.getMessage().contains("memory") && e.getMessage().contains("cpus")
                && e.getMessage().contains("pids") && e.getMessage().contains("timeout"), e.getMessage());
        assertFails(worker.createSandbox(SandboxSpec.of("python", huge(limits))));
        PolicyViolationException image = assertFails(worker.createSandbox(
                SandboxSpec.of("python", limits).withImage("evil/escape:latest")));
        assertTrue(image.getMessage().contains("evil/escape:latest"), image.getMessage());
    }

    @Test
    void aOneOffAboveTheCeilingsIsRefusedOnTheWorkerWhenTheEdgeLetItThrough() {
        ExecutionOutcome.Completed done = completed(await(gateway.execute(Optional.empty(),
                ExecutionRequest.of("python", "print('ran')", huge(limits)), "oneoff-" + UUID.randomUUID())));
        assertEquals(Verdict.POLICY_VIOLATION, done.result().verdict(), done.toString());
        assertTrue(done.result().message().contains("memory 17179869184 bytes is above the ceiling"), done.result().message());
        assertEquals("", done.result().stdout(), "nothing ran");
    }

    @Test
    void aSandboxInAnImageNotAllowedOrWithANetworkIsRefusedOnTheWorker() {
        String inImage = await(gateway.createSandbox(SandboxSpec.of("python", limits).withImage("evil/escape:latest")))
                .sandboxId();
        ExecutionOutcome.Completed first = completed(await(gateway.execute(Optional.of(inImage),
                ExecutionRequest.of("python", "print('ran')", limits), "img-" + UUID.randomUUID())));
        assertEquals(Verdict.POLICY_VIOLATION, first.result().verdict(), first.toString());
        assertTrue(first.result().message().contains("image 'evil/escape:latest' is not allowed"), first.result().message());

        String networked = await(gateway.createSandbox(SandboxSpec.of("python", limits)
                .withDocker(SandboxOptions.hardened().withNetworkMode("bridge")))).sandboxId();
        ExecutionOutcome.Completed second = completed(await(gateway.execute(Optional.of(networked),
                ExecutionRequest.of("python", "print('ran')", limits), "net-" + UUID.randomUUID())));
        assertEquals(Verdict.POLICY_VIOLATION, second.result().verdict(), second.toString());
        assertTrue(second.result().message().contains("network bridge is not allowed"), second.result().message());
        assertEquals(0, TestNodes.sessionsOn(gateway), "no container was opened for either");
    }

    @Test
    void jobsSentStraightToTheWorkerAreCheckedThere() throws Exception {
        ActorRef<ExecutionWorker.Command> target = workerRef();
        ExecutionWorker.Reply reply = askWorker(target, r -> new ExecutionWorker.RunOnce("direct-" + UUID.randomUUID(),
                "direct", ExecutionRequest.of("python", "print('ran')", huge(limits)), List.of(), r));
        ExecutionWorker.Refused refused = assertInstanceOf(ExecutionWorker.Refused.class, reply);
        assertTrue(refused.reason().contains("ceiling"), refused.reason());

        SandboxSpec rootUser = SandboxSpec.of("python", limits).withDocker(SandboxOptions.hardened().withUser("0:0"));
        reply = askWorker(target, r -> new ExecutionWorker.RunInSandbox("direct-" + UUID.randomUUID(), "direct",
                "sbx-direct-" + UUID.randomUUID(), rootUser, ExecutionRequest.of("python", "print('ran')", limits),
                true, List.of(), r));
        refused = assertInstanceOf(ExecutionWorker.Refused.class, reply);
        assertTrue(refused.reason().contains("root"), refused.reason());
        assertEquals(0, TestNodes.sessionsOn(gateway), "no container was opened");
    }

    private ActorRef<ExecutionWorker.Command> workerRef() throws Exception {
        Receptionist.Listing listing = AskPattern.<Receptionist.Command, Receptionist.Listing>ask(
                        gateway.system().receptionist(), r -> Receptionist.find(ExecutionWorker.SERVICE_KEY, r),
                        Duration.ofSeconds(30), gateway.system().scheduler())
                .toCompletableFuture().get(30, TimeUnit.SECONDS);
        Set<ActorRef<ExecutionWorker.Command>> workers = listing.getServiceInstances(ExecutionWorker.SERVICE_KEY);
        assertEquals(1, workers.size(), "the worker node's worker");
        return workers.iterator().next();
    }

    private ExecutionWorker.Reply askWorker(ActorRef<ExecutionWorker.Command> target,
                                           java.util.function.Function<ActorRef<ExecutionWorker.Reply>, ExecutionWorker.Command> message)
            throws Exception {
        return AskPattern.<ExecutionWorker.Command, ExecutionWorker.Reply>ask(target, message::apply,
                Duration.ofSeconds(60), gateway.system().scheduler()).toCompletableFuture().get(60, TimeUnit.SECONDS);
    }

    private static PolicyViolationException assertFails(java.util.concurrent.CompletionStage<?> stage) {
        ExecutionException e = assertThrows(ExecutionException.class,
                () -> stage.toCompletableFuture().get(60, TimeUnit.SECONDS));
        Throwable cause = e.getCause() instanceof CompletionException c ? c.getCause() : e.getCause();
        return assertInstanceOf(PolicyViolationException.class, cause);
    }
}
