package io.agentexec.cluster;

import static io.agentexec.cluster.TestNodes.await;
import static io.agentexec.cluster.TestNodes.completed;
import static io.agentexec.cluster.TestNodes.python;
import static io.agentexec.cluster.TestNodes.run;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.execution.ExecutionEntity;
import io.agentexec.cluster.persistence.SchemaMigrations;
import io.agentexec.sandbox.docker.DockerBackend;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** One node holding both roles, journal in an H2 file: the single-node default. Real Docker. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class SingleNodeTest {
    private static final int SLOTS = 2;
    private static final int QUEUE = 2;

    private Path data;
    private AgentexecCluster node;
    private Limits limits;

    @BeforeAll
    void start() throws Exception {
        data = Files.createTempDirectory("agentexec-single");
        node = TestNodes.start(TestNodes.common(TestNodes.freePort(), List.of(), "gateway,worker")
                + TestNodes.h2(data)
                + "agentexec.cluster.worker { slots = " + SLOTS + ", queue = " + QUEUE + " }\n");
        limits = node.engine().orElseThrow().defaultLimits().withTimeout(Duration.ofSeconds(20));
        TestNodes.awaitWorkers(node, 1);
    }

    @AfterAll
    void stop() {
        if (node != null) {
            node.close();
        }
    }

    @Test
    void sandboxKeepsItsWorkspaceAcrossExecutions() {
        SandboxView created = await(node.createSandbox("python", limits));
        assertEquals(SandboxView.Status.ACTIVE, created.status());
        Optional<String> id = Optional.of(created.sandboxId());
        completed(run(node, id, "open('notes.txt', 'w').write('hello from the first run')", limits));
        ExecutionOutcome.Completed second = completed(run(node, id, "print(open('notes.txt').read())", limits));
        assertEquals(Verdict.OK, second.result().verdict());
        assertEquals("hello from the first run\n", second.result().stdout());
        assertTrue(second.workspaceLost().isEmpty());
        SandboxView view = await(node.sandbox(created.sandboxId()));
        assertEquals(2, view.executions());
        assertTrue(view.worker().isPresent(), "bound to a worker");
        assertEquals(Optional.of("python"), view.language());
    }

    @Test
    void repeatedKeyOnASandboxReplaysTheReplyWithoutRunningAgain() {
        String id = await(node.createSandbox("python", limits)).sandboxId();
        String count = "with open('count.txt', 'a') as f: f.write('x\\n')\nprint(len(open('count.txt').readlines()))";
        ExecutionOutcome first = await(node.execute(Optional.of(id), python(count, limits), "key-1"));
        ExecutionOutcome again = await(node.execute(Optional.of(id), python(count, limits), "key-1"));
        ExecutionOutcome other = await(node.execute(Optional.of(id), python(count, limits), "key-2"));
        assertEquals("1\n", completed(first).result().stdout());
        assertFalse(first.replayed());
        assertTrue(again.replayed());
        assertEquals("1\n", completed(again).result().stdout());
        assertEquals("2\n", completed(other).result().stdout(), "key-1 ran once only");
    }

    @Test
    void repeatedKeyWithoutSandboxReplaysTheReply() {
        String key = "once-" + UUID.randomUUID();
        ExecutionRequest request = python("import uuid; print(uuid.uuid4())", limits);
        ExecutionOutcome.Completed first = completed(await(node.execute(Optional.empty(), request, key)));
        ExecutionOutcome.Completed again = completed(await(node.execute(Optional.empty(), request, key)));
        assertEquals(first.result().stdout(), again.result().stdout());
        assertTrue(again.replayed());
        ExecutionEntity.ExecutionView view = await(node.execution(key));
        assertEquals(1, view.attempts().size());
        assertTrue(view.outcome().isPresent());
        assertFalse(first.mayHaveRunMoreThanOnce());
    }

    /**
     * The worker passes the tenant of a one-off's key ({@code TENANT:ID}) to the engine: a tenant's next one-off gets
     * its scrubbed container back (the same host name, the container's id), another tenant's never does.
     */
    @Test
    void oneOffsOfATenantGetItsScrubbedContainerBackAndNoOtherTenantDoes() {
        String host = "import socket; print(socket.gethostname())";
        String tenant = "t" + UUID.randomUUID().toString().substring(0, 8);
        long recycledBefore = ((DockerBackend) node.engine().orElseThrow().backend()).poolStats().recycled();
        String first = completed(await(node.execute(Optional.empty(), python(host, limits),
                tenant + ":exe-" + UUID.randomUUID()))).result().stdout();
        // the container is scrubbed after the answer is sent: wait for it to be back before the tenant's next one-off
        DockerBackend docker = (DockerBackend) node.engine().orElseThrow().backend();
        TestNodes.eventually("the first one-off's container is back in the pool",
                () -> docker.poolStats().recycled() > recycledBefore);
        String other = completed(await(node.execute(Optional.empty(), python(host, limits),
                "u" + UUID.randomUUID().toString().substring(0, 8) + ":exe-" + UUID.randomUUID()))).result().stdout();
        String second = completed(await(node.execute(Optional.empty(), python(host, limits),
                tenant + ":exe-" + UUID.randomUUID()))).result().stdout();
        assertNotEquals(first, other, "another tenant's one-off");
        assertEquals(first, second, "the tenant's next one-off ran in its recycled container");
    }

    @Test
    void userCodeFailuresAreResultsAndAreNotRetried() {
        ExecutionOutcome.Completed failed = completed(run(node, Optional.empty(), "import sys; sys.exit(3)", limits));
        assertEquals(Verdict.RUNTIME_ERROR, failed.result().verdict());
        assertEquals(3, failed.result().exitCode());
        assertEquals(1, failed.attempts().size());

        ExecutionOutcome.Completed slow = completed(run(node, Optional.empty(), "import time; time.sleep(30)",
                limits.withTimeout(Duration.ofSeconds(1))));
        assertEquals(Verdict.TIMEOUT, slow.result().verdict());
        assertEquals(1, slow.attempts().size());
    }

    @Test
    void closeRemovesTheContainerAndEndsTheSandbox() {
        String id = await(node.createSandbox("python", limits)).sandboxId();
        completed(run(node, Optional.of(id), "print(1)", limits));
        int before = TestNodes.sessionsOn(node);
        SandboxView closed = await(node.closeSandbox(id));
        assertEquals(SandboxView.Status.CLOSED, closed.status());
        TestNodes.eventually("the container is removed", () -> TestNodes.sessionsOn(node) == before - 1);
        ExecutionOutcome after = run(node, Optional.of(id), "print(1)", limits);
        assertInstanceOf(ExecutionOutcome.Rejected.class, after);
        assertEquals(SandboxView.Status.CLOSED, await(node.closeSandbox(id)).status(), "closing again is a no-op");
    }

    @Test
    void excessWorkIsRefusedAtOnceAndAcceptedWorkCompletes() throws Exception {
        int offered = 3 * (SLOTS + QUEUE);
        List<CompletableFuture<ExecutionOutcome>> replies = new ArrayList<>();
        for (int i = 0; i < offered; i++) {
            replies.add(node.execute(Optional.empty(), python("import time; time.sleep(3); print('done')", limits),
                    "burst-" + UUID.randomUUID()).toCompletableFuture());
        }
        long[] doneAt = new long[offered];
        for (int i = 0; i < offered; i++) {
            int index = i;
            replies.get(i).whenComplete((r, e) -> doneAt[index] = System.nanoTime());
        }
        CompletableFuture.allOf(replies.toArray(CompletableFuture[]::new)).get(3, TimeUnit.MINUTES);
        long overloaded = 0;
        long lastRefusal = Long.MIN_VALUE;
        long firstCompletion = Long.MAX_VALUE;
        for (int i = 0; i < offered; i++) {
            ExecutionOutcome reply = replies.get(i).get();
            if (reply instanceof ExecutionOutcome.Overloaded) {
                overloaded++;
                lastRefusal = Math.max(lastRefusal, doneAt[i]);
            } else {
                assertEquals(Verdict.OK, completed(reply).result().verdict());
                assertEquals("done\n", completed(reply).result().stdout());
                firstCompletion = Math.min(firstCompletion, doneAt[i]);
            }
        }
        assertEquals(SLOTS + QUEUE, offered - overloaded, "slots plus queue are accepted");
        assertEquals(offered - SLOTS - QUEUE, overloaded, "the rest is refused");
        assertTrue(lastRefusal < firstCompletion, "every refusal came before any accepted execution finished");
    }

    @Test
    void badInputsFailWithTheirReason() {
        assertInvalid(node.createSandbox("cobol", limits), "unknown language");
        assertInvalid(node.createSandbox("bad id!", "python", limits), "sandbox id");
        assertInvalid(node.execute(Optional.empty(), python("print(1)", limits), " "), "idempotency key");
        assertInvalid(node.execute(Optional.empty(), python("print(1)", limits), "has space"), "idempotency key");
        assertInvalid(node.execute(Optional.empty(), python("print(1)", limits), "k".repeat(201)), "idempotency key");
        assertInvalid(node.execute(Optional.of("../etc"), python("print(1)", limits), "k1"), "sandbox id");
        assertInvalid(node.sandbox(""), "sandbox id");
        assertInvalid(node.closeSandbox("a b"), "sandbox id");
        assertInvalid(node.execution(""), "idempotency key");

        ExecutionOutcome unknown = run(node, Optional.of("never-created-" + UUID.randomUUID()), "print(1)", limits);
        assertInstanceOf(ExecutionOutcome.NotFound.class, unknown);
        assertTrue(((ExecutionOutcome.NotFound) unknown).reason().contains("create it first"));

        ExecutionException closeUnknown = assertThrows(ExecutionException.class, () ->
                node.closeSandbox("never-created-" + UUID.randomUUID()).toCompletableFuture().get(1, TimeUnit.MINUTES));
        assertTrue(closeUnknown.getCause().getMessage().contains("no sandbox"), closeUnknown.getCause().getMessage());

        String id = await(node.createSandbox("python", limits)).sandboxId();
        ExecutionException otherLanguage = assertThrows(ExecutionException.class, () ->
                node.createSandbox(id, "bash", limits).toCompletableFuture().get(1, TimeUnit.MINUTES));
        assertTrue(otherLanguage.getCause().getMessage().contains("exists with language python"));
        assertEquals(SandboxView.Status.NONE, await(node.sandbox("never-" + UUID.randomUUID())).status());
        assertThrows(InvalidRequestException.class, () -> ExecutionRequest.builder(limits).build(),
                "a request without blocks or files is refused before it reaches the cluster");
    }

    @Test
    void migrationsAreVersionedAndIdempotent() {
        assertEquals(0, SchemaMigrations.migrate(node.settings().persistence()), "the schema is already current");
    }

    @Test
    void theH2JournalKeepsAnExecutionsEventsInTheirRows() throws Exception {
        // An event's payload is a few hundred bytes to a few KiB: in H2's separate LOB storage every write cost about
        // twice the CPU (V4__inline_payloads.sql).
        try (var c = java.sql.DriverManager.getConnection(node.settings().persistence().url(),
                node.settings().persistence().user(), node.settings().persistence().password());
             var r = c.createStatement().executeQuery("SELECT SETTING_VALUE FROM INFORMATION_SCHEMA.SETTINGS"
                     + " WHERE SETTING_NAME = 'MAX_LENGTH_INPLACE_LOB'")) {
            assertTrue(r.next(), "H2 reports its in-row LOB length");
            assertEquals(16384, Integer.parseInt(r.getString(1)));
        }
    }

    private static void assertInvalid(java.util.concurrent.CompletionStage<?> stage, String fragment) {
        CompletionException e = assertThrows(CompletionException.class, () -> stage.toCompletableFuture().join());
        assertInstanceOf(InvalidRequestException.class, e.getCause());
        assertTrue(e.getCause().getMessage().contains(fragment), e.getCause().getMessage());
    }
}
