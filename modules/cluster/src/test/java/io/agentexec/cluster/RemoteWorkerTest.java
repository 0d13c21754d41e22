package io.agentexec.cluster;

import static io.agentexec.cluster.TestNodes.await;
import static io.agentexec.cluster.TestNodes.completed;
import static io.agentexec.cluster.TestNodes.python;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.api.CancelReply;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.OutputChunk;
import io.agentexec.cluster.api.SandboxFileException;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import io.agentexec.sandbox.options.RunArgs;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Two nodes on PostgreSQL: the caller and the entities on a gateway-only node, the code on a
 * worker-only node. Output, cancels, files and the sandbox's spec all cross the network.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class RemoteWorkerTest {
    private String schema;
    private AgentexecCluster gateway;
    private AgentexecCluster worker;
    private Limits limits;

    @BeforeAll
    void start() {
        schema = TestNodes.newSchema();
        int gatewayPort = TestNodes.freePort();
        gateway = TestNodes.start(TestNodes.common(gatewayPort, List.of(gatewayPort), "gateway") + TestNodes.postgres(schema));
        worker = TestNodes.start(TestNodes.common(TestNodes.freePort(), List.of(gatewayPort), "worker") + TestNodes.postgres(schema));
        limits = worker.engine().orElseThrow().defaultLimits().withTimeout(Duration.ofMinutes(15));
        TestNodes.awaitWorkers(gateway, 1);
        assertTrue(gateway.engine().isEmpty(), "the gateway runs no code: every run is remote");
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

    @Test
    void outputCancelAndFilesOfASandboxOnARemoteWorker() throws Exception {
        RunArgs.Applied applied = gateway.dockerRunArgs(List.of("--tmpfs", "/scratch:rw,size=1m"), Optional.empty(), limits);
        String id = await(gateway.createSandbox(SandboxSpec.of("python", applied.limits()).withDocker(applied.options())))
                .sandboxId();
        await(gateway.writeFile(id, "in.txt", "from the gateway".getBytes(StandardCharsets.UTF_8)));

        String running = "run-" + UUID.randomUUID();
        CompletableFuture<OutputChunk> started = new CompletableFuture<>();
        CompletionStage<ExecutionOutcome> reply = gateway.execute(Optional.of(id), python(
                "import time\nopen('/scratch/x', 'w').write('1')\nprint(open('in.txt').read(), flush=True)\ntime.sleep(600)\n",
                limits), running, chunk -> {
                    if (chunk.text().contains("from the gateway")) {
                        started.complete(chunk);
                    }
                });
        started.get(TestNodes.WAIT.toSeconds(), TimeUnit.SECONDS);
        assertFalse(reply.toCompletableFuture().isDone(), "the chunk crossed the network while the code ran");
        assertEquals(CancelReply.Outcome.CANCELLING, await(gateway.cancel(Optional.of(id), running)).outcome());
        ExecutionOutcome.Completed cancelled = completed(await(reply));
        assertEquals(Verdict.CANCELLED, cancelled.result().verdict());

        ExecutionOutcome.Completed after = completed(await(gateway.execute(Optional.of(id), python(
                "open('out.bin', 'wb').write(bytes(range(256)))", limits), "after")));
        assertEquals(Verdict.OK, after.result().verdict(), after.result().stderr());
        byte[] expected = new byte[256];
        for (int i = 0; i < 256; i++) {
            expected[i] = (byte) i;
        }
        assertArrayEquals(expected, await(gateway.readFile(id, "out.bin", 1024)));
        StreamingCancelFilesTest.assertFails(SandboxFileException.class, gateway.readFile(id, "nope", 10), "no such file",
                SandboxFileException.Kind.NOT_FOUND);
        await(gateway.closeSandbox(id));
    }

    @Test
    void aOneOffOnARemoteWorkerStreamsWholeCharactersAndEndsOnce() {
        ConcurrentLinkedQueue<OutputChunk> chunks = new ConcurrentLinkedQueue<>();
        String code = "import sys\nfor i in range(3000):\n    sys.stdout.write('é€😀\\n'[i % 4])\n";
        ExecutionOutcome.Completed done = completed(await(gateway.execute(Optional.empty(), python(code, limits),
                "once-" + UUID.randomUUID(), chunks::add)));
        assertEquals(Verdict.OK, done.result().verdict());
        assertFalse(chunks.isEmpty());
        chunks.forEach(c -> assertFalse(c.text().contains("\uFFFD"), "a character cut in two: " + c));
        assertEquals(0, chunks.stream().mapToLong(OutputChunk::droppedBefore).sum(), "well within the default buffer");
    }
}
