package io.agentexec.cluster;

import static io.agentexec.cluster.StreamingCancelFilesTest.assertFails;
import static io.agentexec.cluster.TestNodes.await;
import static io.agentexec.cluster.TestNodes.completed;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import io.agentexec.sandbox.model.Verdict;
import io.agentexec.sandbox.options.RunArgs;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityTypeKey;
import org.apache.pekko.persistence.typed.PersistenceId;
import org.apache.pekko.persistence.typed.javadsl.CommandHandler;
import org.apache.pekko.persistence.typed.javadsl.EventHandler;
import org.apache.pekko.persistence.typed.javadsl.EventSourcedBehavior;
import org.junit.jupiter.api.Test;

/**
 * Sandboxes made from an image and Docker options (real Docker, H2), kept across a restart of the
 * node; and another module's event-sourced entity on the node's own system and journal.
 */
class SandboxSpecAndSharingTest {

    /** Another module's entity: a counter, event-sourced in the node's journal. */
    static final class Counter extends EventSourcedBehavior<Counter.Command, Counter.Added, Integer> {
        static final EntityTypeKey<Command> TYPE_KEY = EntityTypeKey.create(Command.class, "TestCounter");

        sealed interface Command extends CborSerializable {
        }

        record Add(int amount, ActorRef<Integer> replyTo) implements Command {
        }

        record Added(int amount) implements CborSerializable {
        }

        static Behavior<Command> create(String id) {
            return new Counter(id);
        }

        private Counter(String id) {
            super(PersistenceId.of(TYPE_KEY.name(), id));
        }

        @Override
        public Integer emptyState() {
            return 0;
        }

        @Override
        public CommandHandler<Command, Added, Integer> commandHandler() {
            return newCommandHandlerBuilder().forAnyState().onCommand(Add.class, (state, add) -> add.amount() == 0
                    ? Effect().none().thenReply(add.replyTo(), s -> s)
                    : Effect().persist(new Added(add.amount())).thenReply(add.replyTo(), s -> s)).build();
        }

        @Override
        public EventHandler<Integer, Added> eventHandler() {
            return newEventHandlerBuilder().forAnyState().onEvent(Added.class, (state, added) -> state + added.amount()).build();
        }
    }

    /** Images the policy allows here beyond the languages' own: well-formed names no worker has. */
    private static final String ALLOWED_IMAGES = "agentexec.policy.allowed-images = "
            + "[\"registry.example:5000/team/python:3.12-slim\", \"agentexec/absent-image:1\"]\n";

    private static AgentexecCluster startNode(Path data) {
        AgentexecCluster node = TestNodes.start(TestNodes.common(TestNodes.freePort(), List.of(), "gateway,worker")
                + ALLOWED_IMAGES + TestNodes.h2(data));
        TestNodes.awaitWorkers(node, 1);
        return node;
    }

    private static int addOnNode(AgentexecCluster node, String id, int amount) {
        return await(node.sharding().entityRefFor(Counter.TYPE_KEY, id)
                .<Integer>ask(replyTo -> new Counter.Add(amount, replyTo), Duration.ofSeconds(30)));
    }

    private static ExecutionRequest bash(String code, Limits limits) {
        return ExecutionRequest.of("bash", code, limits);
    }

    @Test
    void imageAndDockerOptionsMakeTheContainerAndSurviveARestartOfTheNode() throws Exception {
        Path data = Files.createTempDirectory("agentexec-spec");
        String prefix = "aexec-spec-" + UUID.randomUUID().toString().substring(0, 8);
        String id = "spec-" + UUID.randomUUID();
        String counter = "c-" + UUID.randomUUID();
        Limits limits;
        RunArgs.Applied applied;
        try (AgentexecCluster node = startNode(data)) {
            limits = node.engine().orElseThrow().defaultLimits().withTimeout(Duration.ofSeconds(60));
            // Another module's entity, initialised after start, on the node's sharding and journal.
            node.sharding().init(Entity.of(Counter.TYPE_KEY, ctx -> Counter.create(ctx.getEntityId())));
            assertEquals(5, addOnNode(node, counter, 5));

            // AG2's docker_run_args and docker_container_name, read by the node's engine settings.
            applied = node.dockerRunArgs(List.of("--tmpfs", "/scratch:rw,size=1m", "--memory", "300m"),
                    Optional.of(prefix), limits);
            assertEquals(300L << 20, applied.limits().memoryBytes());
            SandboxSpec spec = SandboxSpec.of("sh", applied.limits()).withImage("agentexec/python:bookworm")
                    .withDocker(applied.options());
            SandboxView created = await(node.createSandbox(id, spec));
            assertEquals(Optional.of("bash"), created.language(), "the language's canonical name");
            assertEquals(Optional.of("agentexec/python:bookworm"), created.image());
            assertEquals(Optional.of(applied.options()), created.docker());

            ExecutionOutcome.Completed run = completed(await(node.execute(Optional.of(id), bash(
                    "python3 -c 'print(6 * 7)'\necho scratch > /scratch/f && cat /scratch/f\n", limits), "k1")));
            assertEquals(Verdict.OK, run.result().verdict(), run.result().output());
            assertEquals("42\nscratch\n", run.result().stdout(), "python3 from the image; the extra tmpfs from the options");
            assertEquals(1, containersNamed(prefix), "the container carries AG2's docker_container_name prefix");

            // The default bash sandbox has the shell image: no python3 there, and no /scratch.
            String plain = await(node.createSandbox("bash", limits)).sandboxId();
            ExecutionOutcome.Completed other = completed(await(node.execute(Optional.of(plain), bash(
                    "command -v python3 || echo no-python; test -d /scratch || echo no-scratch", limits), "k1")));
            assertEquals("no-python\nno-scratch\n", other.result().stdout());
            await(node.closeSandbox(plain));

            // Same id, same spec: a no-op; another image or options: refused with the difference named.
            assertEquals(SandboxView.Status.ACTIVE, await(node.createSandbox(id, spec)).status());
            assertFails(Exception.class, node.createSandbox(id, spec.withImage("agentexec/node:bookworm")), "image");
            assertFails(Exception.class, node.createSandbox(id, spec.withDocker(SandboxOptions.hardened())), "Docker options");
        }
        assertEquals(0, containersNamed(prefix), "closing the node removed the container");

        try (AgentexecCluster node = startNode(data)) {
            node.sharding().init(Entity.of(Counter.TYPE_KEY, ctx -> Counter.create(ctx.getEntityId())));
            assertEquals(5, addOnNode(node, counter, 0), "the other module's entity recovered from the shared journal");
            SandboxView back = await(node.sandbox(id));
            assertEquals(Optional.of("agentexec/python:bookworm"), back.image(), "the spec came back from the Created event");
            assertEquals(Optional.of(applied.options()), back.docker());
            // Its container went with the old node: a fresh one, from the same image and options, says so.
            ExecutionOutcome.Completed run = completed(await(node.execute(Optional.of(id), bash(
                    "python3 -c 'print(1)' && test -d /scratch && echo has-scratch", limits), "k2")));
            assertEquals("1\nhas-scratch\n", run.result().stdout());
            assertTrue(run.workspaceLost().isPresent());
            assertEquals(1, containersNamed(prefix));
            await(node.closeSandbox(id));
        }
    }

    @Test
    void imagesAndOptionsThatAreMalformedOrWeakenTheSandboxAreRefusedByName() throws Exception {
        Path data = Files.createTempDirectory("agentexec-spec-bad");
        try (AgentexecCluster node = startNode(data)) {
            Limits limits = node.engine().orElseThrow().defaultLimits();
            SandboxSpec python = SandboxSpec.of("python", limits);
            assertFails(InvalidRequestException.class, node.createSandbox(python.withImage("bad image")), "image");
            assertFails(InvalidRequestException.class, node.createSandbox(python.withImage("UPPER/Case")), "image");
            assertFails(InvalidRequestException.class, node.createSandbox(python.withImage("")), "image");
            SandboxOptions hardened = SandboxOptions.hardened();
            assertFails(InvalidRequestException.class, node.createSandbox(python.withDocker(hardened.withNetworkMode("host"))),
                    "network host");
            assertFails(InvalidRequestException.class, node.createSandbox(python.withDocker(hardened.withUser("0:0"))), "root");
            for (String rootSpelling : List.of("00", "+0", "1:0", "nobody")) {
                assertFails(InvalidRequestException.class, node.createSandbox(python.withDocker(hardened.withUser(rootSpelling))),
                        "could run as root");
            }
            // Only the configured runtime (here none: the daemon's default) unless the operator lists more.
            assertFails(InvalidRequestException.class, node.createSandbox(python.withDocker(
                    hardened.withRuntime(Optional.of("runc")))), "runtime runc is not allowed");
            assertFails(InvalidRequestException.class, node.createSandbox(python.withDocker(
                    hardened.withRuntime(Optional.of("made-up")))), "runtime made-up");
            assertFails(InvalidRequestException.class, node.createSandbox(python.withDocker(
                    hardened.withReadOnlyRootFilesystem(false))), "writable root");
            assertFails(InvalidRequestException.class, node.createSandbox(python.withDocker(
                    hardened.withCapDrop(List.of("NET_RAW")))), "keeps capabilities");
            assertFails(InvalidRequestException.class, node.createSandbox(python.withDocker(
                    hardened.withNamePrefix(Optional.of("-bad name")))), "docker_container_name");
            assertFails(InvalidRequestException.class, node.createSandbox(SandboxSpec.of("cobol", limits)), "cobol");
            InvalidRequestException privileged = assertThrows(InvalidRequestException.class,
                    () -> node.dockerRunArgs(List.of("--privileged"), Optional.empty(), limits));
            assertTrue(privileged.getMessage().contains("--privileged"), privileged.getMessage());
            assertThrows(InvalidRequestException.class, () -> node.dockerRunArgs(List.of(), Optional.of("a b"), limits));
            // Refused: a well-formed image the policy does not allow.
            assertFails(InvalidRequestException.class, node.createSandbox(python.withImage("python:3.12-slim")),
                    "image 'python:3.12-slim' is not allowed");
            // Accepted: a well-formed image the policy allows, even one not present here (pulling is the daemon's affair).
            SandboxView ok = await(node.createSandbox(python.withImage("registry.example:5000/team/python:3.12-slim")));
            assertNotEquals(SandboxView.Status.NONE, ok.status());
            await(node.closeSandbox(ok.sandboxId()));
        }
    }

    @Test
    void aSandboxWhoseImageIsAbsentEndsWithAnErrorThatSaysHowToGetIt() throws Exception {
        Path data = Files.createTempDirectory("agentexec-spec-absent");
        try (AgentexecCluster node = startNode(data)) {
            Limits limits = node.engine().orElseThrow().defaultLimits();
            SandboxView sandbox = await(node.createSandbox(SandboxSpec.of("python", limits)
                    .withImage("agentexec/absent-image:1")));
            // A single worker: the retries go back to it (no other is left) and end as the engine's error says.
            ExecutionOutcome reply = await(node.execute(Optional.of(sandbox.sandboxId()),
                    ExecutionRequest.of("python", "print(1)", limits), "absent-image-1"));
            assertTrue(reply instanceof ExecutionOutcome.Completed, reply::toString);
            ExecutionResult result = ((ExecutionOutcome.Completed) reply).result();
            assertEquals(Verdict.SANDBOX_ERROR, result.verdict(), result::toString);
            assertTrue(result.message().contains("images/build.sh"), result::message);
            await(node.closeSandbox(sandbox.sandboxId()));
        }
    }

    private static long containersNamed(String prefix) throws IOException, InterruptedException {
        Process p = new ProcessBuilder("docker", "ps", "-q", "--filter", "label=io.agentexec.managed=true",
                "--filter", "name=" + prefix + "-").redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        p.waitFor();
        return out.lines().filter(l -> !l.isBlank()).count();
    }
}
