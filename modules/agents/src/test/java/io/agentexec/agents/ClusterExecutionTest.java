package io.agentexec.agents;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.command.InspectContainerResponse;
import com.github.dockerjava.api.model.Container;
import io.agentexec.agents.entity.ConversationEntity;
import io.agentexec.agents.execution.WorkspaceExecutions;
import io.agentexec.agents.execution.ExecutionCall;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.sandbox.docker.DockerBackend;
import io.agentexec.sandbox.model.CodeBlock;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import io.agentexec.testkit.FakeModel;

/**
 * Agents attached to a cluster node: a chat's code runs in the cluster's sandbox entity (workspace
 * kept across turns, idempotent by {@code chat#index}); what the cluster cannot place stays local.
 * Real Docker, real H2 journal, real HTTP to a scripted model on loopback.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ClusterExecutionTest {
    private AgentRuntime runtime;

    @BeforeAll
    void start() {
        // an ended chat's workspace is kept this long for its files, then closed
        runtime = AgentRuntime.start(com.typesafe.config.ConfigFactory.parseString(
                "agentexec.agents.workspace-retention = 5s").withFallback(TestRuntimes.h2()));
    }

    @AfterAll
    void stop() {
        runtime.close();
    }

    private WorkspaceExecutions service() {
        return runtime.executions();
    }

    private static ExecutionCall call(String sandboxKey, String key, String code) {
        Limits limits = io.agentexec.sandbox.EngineSettings.load().defaultLimits().withTimeout(Duration.ofSeconds(30));
        return new ExecutionCall(sandboxKey, key, Isolation.DOCKER, Optional.empty(), Optional.empty(), List.of(),
                ExecutionRequest.builder(limits).blocks(List.of(new CodeBlock("python", code))).build());
    }

    @Test
    void aChatsWorkspaceIsOneClusterSandboxThatKeepsItsFilesAcrossTurns() throws Exception {
        try (FakeModel llm = new FakeModel()) {
            llm.reply("```python\nopen('note.txt', 'w').write('kept')\nprint('wrote')\n```")
                    .reply("```python\nprint(open('note.txt').read())\n```")
                    .reply("TERMINATE");
            AssistantAgent assistant = runtime.assistantAgent("cluster_assistant", "Talk.", TestRuntimes.llm(llm));
            UserProxyAgent executor = runtime.userProxyAgent("cluster_executor", o -> o
                    .humanInputMode(HumanInputMode.NEVER)
                    .codeExecutionConfig(Map.of("work_dir", "ws", "use_docker", true, "timeout", 30)));
            String id = runtime.startChat(executor, assistant, "write then read", OptionalInt.empty());
            ChatResult result = runtime.awaitResult(id, Duration.ofMinutes(2));

            assertEquals(ConversationStatus.TERMINATED, result.status());
            assertEquals("exitcode: 0 (execution succeeded)\nCode output: kept\n", result.chatHistory().get(4).content());
            String sandbox = WorkspaceExecutions.sandboxId(id + "/cluster_executor/ws", "image");
            // the chat is over: its workspace is kept for its files (agentexec.agents.workspace-retention)...
            assertEquals(SandboxView.Status.ACTIVE, runtime.cluster().sandbox(sandbox).toCompletableFuture().get().status());
            // ...then its sandbox is closed (released), after its two runs
            SandboxView view = awaitStatus(sandbox, SandboxView.Status.CLOSED);
            assertEquals(2, view.executions());
        }
    }

    @Test
    void theSameKeyNeverRunsTheCodeTwice() throws Exception {
        String workspace = "direct/" + UUID.randomUUID() + "/agent/ws";
        String key = "chat-" + UUID.randomUUID() + "#2";
        ExecutionResult first = service().execute(call(workspace, key, "print('first')")).toCompletableFuture().get();
        ExecutionResult again = service().execute(call(workspace, key, "print('second')")).toCompletableFuture().get();

        assertEquals("first\n", first.stdout());
        assertEquals("first\n", again.stdout(), "a resumed chat gets the first run's result back");
    }

    @Test
    void aReleasedWorkspaceIsClosedAndSaysSoInsteadOfRunning() throws Exception {
        String workspace = "direct/" + UUID.randomUUID() + "/agent/ws";
        assertEquals(Verdict.OK, service().execute(call(workspace, "k-" + UUID.randomUUID(), "print(1)"))
                .toCompletableFuture().get().verdict());
        service().release(workspace);
        String sandbox = WorkspaceExecutions.sandboxId(workspace, "image");
        // closing is asynchronous; the entity answers in order, so the view below comes after the close
        SandboxView view = runtime.cluster().closeSandbox(sandbox).toCompletableFuture().get();
        assertEquals(SandboxView.Status.CLOSED, view.status());

        ExecutionResult refused = service().execute(call(workspace, "k-" + UUID.randomUUID(), "print(2)"))
                .toCompletableFuture().get();
        assertEquals(Verdict.SANDBOX_ERROR, refused.verdict());
        assertTrue(refused.message().contains("closed"), refused.message());
        assertTrue(refused.ag2Reply().startsWith("exitcode: 1 (execution failed)"), refused.ag2Reply());
    }

    /**
     * AG2's usual mixed message (python, then bash, then node, sharing files) runs in one sandbox of the default
     * polyglot image: before, each language had its own image and sandbox, and node found neither file nor node.
     */
    @Test
    void aChatsLanguagesShareOneWorkspace() throws Exception {
        String workspace = "mixed/" + UUID.randomUUID() + "/agent/ws";
        Limits limits = io.agentexec.sandbox.EngineSettings.load().defaultLimits().withTimeout(Duration.ofSeconds(60));
        ExecutionCall mixed = new ExecutionCall(workspace, "k-" + UUID.randomUUID(), Isolation.DOCKER, Optional.empty(),
                Optional.empty(), List.of(), ExecutionRequest.builder(limits).blocks(List.of(
                        new CodeBlock("python", "open('d.txt', 'w').write('shared')"),
                        new CodeBlock("bash", "cat d.txt; echo; echo more >> d.txt"),
                        new CodeBlock("javascript", "console.log(require('fs').readFileSync('d.txt', 'utf8').trim())")))
                .build());
        ExecutionResult result = service().execute(mixed).toCompletableFuture().get();
        assertEquals(Verdict.OK, result.verdict(), result.message());
        assertEquals("shared\nsharedmore\n", result.stdout());
    }

    /**
     * AG2's use_docker: false means "on the host" in AG2; here it runs in the cluster's default sandbox (a
     * container on a worker, in the default polyglot image), never on the node that hosts the chat.
     */
    @Test
    void useDockerFalseRunsInTheClustersSandboxNeverOnThisNode() throws Exception {
        String workspace = "nodocker/" + UUID.randomUUID() + "/agent/ws";
        ExecutionCall plain = call(workspace, "k-" + UUID.randomUUID(), "import os\nprint(os.getuid())");
        ExecutionCall noDocker = new ExecutionCall(workspace, plain.executionKey(), Isolation.BWRAP,
                Optional.of("evil/escape:latest"), Optional.empty(), List.of("--memory", "16g"), plain.request());
        ExecutionResult result = service().execute(noDocker).toCompletableFuture().get();
        assertEquals(Verdict.OK, result.verdict(), result.message());
        assertEquals("65534\n", result.stdout());
        SandboxView view = runtime.cluster().sandbox(WorkspaceExecutions.sandboxId(workspace, "image"))
                .toCompletableFuture().get();
        assertEquals(SandboxView.Status.ACTIVE, view.status(), "it ran in a cluster sandbox");
        assertEquals(Optional.of("agentexec/polyglot:bookworm"), view.image(),
                "without AG2's Docker settings: the default image, not the one asked for");
        assertEquals(Optional.empty(), view.docker());
    }

    /**
     * An AG2 config asking for more than the operator allows (the review's probe: 16g, 64 CPUs, a million
     * pids, a day's timeout) runs within the policy's ceilings; the container shows them.
     */
    @Test
    void aChatsRunArgsAndTimeoutAreHeldToThePolicysCeilings() throws Exception {
        String workspace = "greedy/" + UUID.randomUUID() + "/agent/ws";
        Limits asked = io.agentexec.sandbox.EngineSettings.load().defaultLimits().withTimeout(Duration.ofSeconds(86400));
        ExecutionCall greedy = new ExecutionCall(workspace, "k-" + UUID.randomUUID(), Isolation.DOCKER, Optional.empty(),
                Optional.empty(), List.of("--memory", "16g", "--cpus", "64", "--pids-limit", "1000000"),
                ExecutionRequest.builder(asked).blocks(List.of(new CodeBlock("python", "print('within')"))).build());
        ExecutionResult result = service().execute(greedy).toCompletableFuture().get();
        assertEquals(Verdict.OK, result.verdict(), result.message());
        SandboxView view = runtime.cluster().sandbox(WorkspaceExecutions.sandboxId(workspace, "image"))
                .toCompletableFuture().get();
        Limits ceilings = runtime.cluster().policy().policy().ceilings();
        Limits held = view.limits().orElseThrow();
        assertEquals(ceilings.memoryBytes(), held.memoryBytes());
        assertEquals(ceilings.cpus(), held.cpus());
        assertEquals(ceilings.pids(), held.pids());
        assertEquals(ceilings.timeout(), held.timeout());
        DockerClient docker = DockerBackend.client();
        List<Container> containers = docker.listContainersCmd()
                .withLabelFilter(Map.of("io.agentexec.managed", "true")).exec();
        boolean found = false;
        for (Container c : containers) {
            InspectContainerResponse inspected;
            try {
                inspected = docker.inspectContainerCmd(c.getId()).exec();
            } catch (com.github.dockerjava.api.exception.NotFoundException gone) {
                continue; // removed between the listing and now (a pool's or another engine's on the same daemon)
            }
            if (inspected.getHostConfig().getMemory() != null && inspected.getHostConfig().getMemory() > ceilings.memoryBytes()) {
                throw new AssertionError("a container above the memory ceiling: " + c.getNames()[0]);
            }
            found |= inspected.getHostConfig().getPidsLimit() != null
                    && inspected.getHostConfig().getPidsLimit() == ceilings.pids();
        }
        assertTrue(found, "the chat's container carries the pids ceiling");
    }

    @Test
    void aChatsImageMustBeOneThePolicyAllows() throws Exception {
        String workspace = "image/" + UUID.randomUUID() + "/agent/ws";
        ExecutionCall plain = call(workspace, "k-" + UUID.randomUUID(), "print('ran')");
        ExecutionCall evil = new ExecutionCall(workspace, plain.executionKey(), Isolation.DOCKER,
                Optional.of("evil/escape:latest"), Optional.empty(), List.of(), plain.request());
        ExecutionResult refused = service().execute(evil).toCompletableFuture().get();
        assertEquals(Verdict.POLICY_VIOLATION, refused.verdict());
        assertTrue(refused.message().contains("image 'evil/escape:latest' is not allowed"), refused.message());
        assertEquals(SandboxView.Status.NONE, runtime.cluster().sandbox(WorkspaceExecutions.sandboxId(workspace, "image"))
                .toCompletableFuture().get().status(), "no sandbox was made");
    }

    /**
     * The seed's secure executor: its docker_run_args reach the container the cluster opens (inspected
     * on the real daemon while the chat waits for a human), and the container goes when the chat ends.
     */
    @Test
    void aChatWithTheSeedsSecureRunArgsRunsThroughTheClusterInAContainerThatHasThem() throws Exception {
        String name = "agx-secure-" + UUID.randomUUID().toString().substring(0, 8);
        List<String> secure = List.of("--network", "none", "--read-only", "--tmpfs", "/tmp", "--memory", "512m",
                "--cpus", "0.5", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true");
        DockerClient docker = DockerBackend.client();
        try (FakeModel llm = new FakeModel()) {
            llm.reply("```python\nimport numpy\nprint('numpy', numpy.__name__)\n```").reply("Done.\nTERMINATE");
            AssistantAgent assistant = runtime.assistantAgent("secure_assistant", "Talk.", TestRuntimes.llm(llm));
            UserProxyAgent executor = runtime.userProxyAgent("secure_executor", o -> o
                    .humanInputMode(HumanInputMode.TERMINATE)
                    .codeExecutionConfig(Map.of("work_dir", "secure", "use_docker", "python:3.9-slim", "timeout", 60,
                            "docker_run_args", secure, "docker_container_name", name)));
            String id = runtime.startChat(executor, assistant, "use numpy", OptionalInt.empty());
            awaitHuman(id);

            ConversationEntity.Transcript waiting = runtime.transcript(id);
            assertEquals("exitcode: 0 (execution succeeded)\nCode output: numpy numpy\n",
                    waiting.messages().get(2).content(), "python:3.9-slim maps to the datascience image, which has numpy");
            assertEquals("docker", waiting.executions().get(0).backend());
            String sandbox = WorkspaceExecutions.sandboxId(id + "/secure_executor/secure", "image");
            SandboxView view = runtime.cluster().sandbox(sandbox).toCompletableFuture().get();
            assertEquals(SandboxView.Status.ACTIVE, view.status(), "the code ran in the cluster's sandbox");
            assertEquals(1, view.executions());
            assertEquals(Optional.of("agentexec/datascience:bookworm"), view.image());

            List<Container> containers = docker.listContainersCmd().withNameFilter(List.of(name)).exec();
            assertEquals(1, containers.size(), "one container named after docker_container_name: " + containers);
            InspectContainerResponse inspected = docker.inspectContainerCmd(containers.get(0).getId()).exec();
            assertEquals(512L * 1024 * 1024, inspected.getHostConfig().getMemory(), "--memory 512m");
            assertEquals("none", inspected.getHostConfig().getNetworkMode(), "--network none");
            assertTrue(inspected.getHostConfig().getReadonlyRootfs(), "--read-only");
            assertTrue(List.of(inspected.getHostConfig().getCapDrop()).stream().anyMatch(c -> c.name().equals("ALL")),
                    "--cap-drop ALL");
            assertEquals("agentexec/datascience:bookworm", inspected.getConfig().getImage());

            runtime.provideHumanInput(id, "exit");
            assertEquals(ConversationStatus.TERMINATED, runtime.awaitResult(id, Duration.ofMinutes(1)).status());
            awaitStatus(sandbox, SandboxView.Status.CLOSED);
            for (int i = 0; i < 300 && !docker.listContainersCmd().withShowAll(true).withNameFilter(List.of(name)).exec().isEmpty(); i++) {
                Thread.sleep(100);
            }
            assertTrue(docker.listContainersCmd().withShowAll(true).withNameFilter(List.of(name)).exec().isEmpty(),
                    "the ended chat's container is removed");
        }
    }

    @Test
    void aWeakeningRunArgIsRefusedNamingTheFlagAndNothingRuns() throws Exception {
        AgentConfigException atConfig = assertThrows(AgentConfigException.class, () -> runtime.userProxyAgent("weak_user",
                o -> o.codeExecutionConfig(Map.of("docker_run_args", List.of("--privileged")))));
        assertTrue(atConfig.getMessage().contains("--privileged"), atConfig.getMessage());

        // a call that reaches the service anyway (e.g. from an agent defined before the rule) is refused by the cluster
        String workspace = "direct/" + UUID.randomUUID() + "/agent/ws";
        ExecutionCall plain = call(workspace, "k-" + UUID.randomUUID(), "print('ran')");
        ExecutionCall weak = new ExecutionCall(workspace, plain.executionKey(), Isolation.DOCKER, Optional.empty(),
                Optional.empty(), List.of("--network", "none", "--cap-add", "SYS_ADMIN"), plain.request());
        ExecutionResult refused = service().execute(weak).toCompletableFuture().get();
        assertEquals(Verdict.POLICY_VIOLATION, refused.verdict());
        assertTrue(refused.message().contains("--cap-add"), refused.message());
        assertEquals("", refused.stdout());
        assertEquals(SandboxView.Status.NONE, runtime.cluster().sandbox(WorkspaceExecutions.sandboxId(workspace, "image"))
                .toCompletableFuture().get().status(), "no sandbox was made");
    }

    private SandboxView awaitStatus(String sandbox, SandboxView.Status status) throws Exception {
        SandboxView view = runtime.cluster().sandbox(sandbox).toCompletableFuture().get();
        for (int i = 0; i < 300 && view.status() != status; i++) {
            Thread.sleep(100);
            view = runtime.cluster().sandbox(sandbox).toCompletableFuture().get();
        }
        assertEquals(status, view.status(), view.toString());
        return view;
    }

    private void awaitHuman(String id) throws InterruptedException {
        for (int i = 0; i < 1200; i++) {
            if (runtime.transcript(id).status() == ConversationStatus.AWAITING_HUMAN) {
                return;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("conversation " + id + " never waited for a human: " + runtime.transcript(id));
    }

    @Test
    void chatKeysAreSpelledTheClusterWay() {
        assertEquals("chat-1:7", WorkspaceExecutions.executionId("chat-1#7"));
        String hashed = WorkspaceExecutions.executionId("x".repeat(300) + "#1");
        assertTrue(hashed.startsWith("agents:") && hashed.length() <= 200, hashed);
        assertTrue(WorkspaceExecutions.sandboxId("c/a/w", "python").matches("[A-Za-z0-9][A-Za-z0-9._-]{0,127}"));
        assertFalse(WorkspaceExecutions.sandboxId("c/a/w", "python")
                .equals(WorkspaceExecutions.sandboxId("c/a/w2", "python")));
    }
}
