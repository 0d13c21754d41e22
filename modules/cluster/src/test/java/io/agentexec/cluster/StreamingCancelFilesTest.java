package io.agentexec.cluster;

import static io.agentexec.cluster.TestNodes.await;
import static io.agentexec.cluster.TestNodes.completed;
import static io.agentexec.cluster.TestNodes.python;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.api.CancelReply;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.OutputChunk;
import io.agentexec.cluster.api.SandboxFileException;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * One node (H2, real Docker), one slot: live output (bounded, whole characters), cancellation of a
 * running and of a queued execution, and files through the sandbox entity. The output buffers are
 * small and the flush interval long, so that dropping is certain rather than a matter of speed.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class StreamingCancelFilesTest {
    private static final int MAX_CHUNK = 1024;
    private static final int BUFFER = 4096;
    /** Sleeps far longer than any test waits: only a cancel ends it before its timeout. */
    /** One write of the whole line: an unbuffered print writes the text and its newline separately, and a cancel may fall between. */
    private static final String STARTED_THEN_SLEEPS =
            "import sys, time\nsys.stdout.write('started\\n')\nsys.stdout.flush()\ntime.sleep(600)\n";

    private Path data;
    private AgentexecCluster node;
    private Limits limits;

    @BeforeAll
    void start() throws Exception {
        data = Files.createTempDirectory("agentexec-streaming");
        node = TestNodes.start(TestNodes.common(TestNodes.freePort(), List.of(), "gateway,worker")
                + TestNodes.h2(data)
                + "agentexec.cluster.worker { slots = 1, queue = 2 }\n"
                + "agentexec.cluster.output { flush-interval = 1h, max-chunk-bytes = " + MAX_CHUNK
                + ", buffer-bytes = " + BUFFER + " }\n");
        limits = node.engine().orElseThrow().defaultLimits().withTimeout(Duration.ofMinutes(15));
        TestNodes.awaitWorkers(node, 1);
    }

    @AfterAll
    void stop() {
        if (node != null) {
            node.close();
        }
    }

    private static String key() {
        return "k-" + UUID.randomUUID();
    }

    /** Completes with the first chunk whose text contains {@code text}. */
    private static java.util.function.Consumer<OutputChunk> waitFor(String text, CompletableFuture<OutputChunk> seen) {
        return chunk -> {
            if (chunk.text().contains(text)) {
                seen.complete(chunk);
            }
        };
    }

    @Test
    void outputArrivesWhileTheCodeRunsAndCancelEndsItAsCancelledNeverRetried() throws Exception {
        String key = key();
        CompletableFuture<OutputChunk> started = new CompletableFuture<>();
        CompletionStage<ExecutionOutcome> reply = node.execute(Optional.empty(), python(STARTED_THEN_SLEEPS, limits), key,
                waitFor("started", started));
        OutputChunk first = started.get(TestNodes.WAIT.toSeconds(), TimeUnit.SECONDS);
        assertEquals(key, first.executionKey());
        assertFalse(reply.toCompletableFuture().isDone(), "the code still sleeps: the chunk came while it ran");

        CancelReply cancel = await(node.cancel(Optional.empty(), key));
        assertEquals(CancelReply.Outcome.CANCELLING, cancel.outcome(), cancel.message());
        ExecutionOutcome.Completed done = completed(await(reply));
        assertEquals(Verdict.CANCELLED, done.result().verdict());
        assertEquals("started\n", done.result().stdout(), "the result holds the output before the cancel");
        assertEquals(1, done.attempts().size(), "a cancelled run is a result: never retried");

        assertEquals(CancelReply.Outcome.ALREADY_FINISHED, await(node.cancel(Optional.empty(), key)).outcome());
        ExecutionOutcome again = await(node.execute(Optional.empty(), python("print('never')", limits), key));
        assertTrue(again.replayed());
        assertEquals(Verdict.CANCELLED, completed(again).result().verdict());
        assertEquals(Verdict.CANCELLED, completed(await(node.execution(key)).outcome().orElseThrow()).result().verdict());
    }

    @Test
    void aQueuedExecutionThatIsCancelledNeverRuns() throws Exception {
        String running = key();
        CompletableFuture<OutputChunk> started = new CompletableFuture<>();
        CompletionStage<ExecutionOutcome> first = node.execute(Optional.empty(), python(STARTED_THEN_SLEEPS, limits),
                running, waitFor("started", started));
        started.get(TestNodes.WAIT.toSeconds(), TimeUnit.SECONDS); // it holds the only slot now

        String queued = key();
        ConcurrentLinkedQueue<OutputChunk> queuedOutput = new ConcurrentLinkedQueue<>();
        CompletionStage<ExecutionOutcome> second = node.execute(Optional.empty(), python("print('ran')", limits), queued,
                queuedOutput::add);
        TestNodes.eventually("the second execution accepted into the worker's queue",
                () -> await(node.execution(queued)).accepted());
        assertEquals(CancelReply.Outcome.CANCELLING, await(node.cancel(Optional.empty(), queued)).outcome());
        ExecutionOutcome.Completed cancelled = completed(await(second));
        assertEquals(Verdict.CANCELLED, cancelled.result().verdict());
        assertTrue(cancelled.result().message().contains("before it started"), cancelled.result().message());
        assertEquals("", cancelled.result().stdout());
        assertTrue(queuedOutput.isEmpty(), "nothing ran, nothing was printed");
        assertFalse(first.toCompletableFuture().isDone(), "the running one is untouched");

        await(node.cancel(Optional.empty(), running));
        assertEquals(Verdict.CANCELLED, completed(await(first)).result().verdict());
    }

    @Test
    void cancellingAnUnknownKeyChangesNothingAndSaysSo() {
        CancelReply unknown = await(node.cancel(Optional.empty(), key()));
        assertEquals(CancelReply.Outcome.UNKNOWN, unknown.outcome());
        CancelReply noSandbox = await(node.cancel(Optional.of("no-such-sandbox-" + UUID.randomUUID()), key()));
        assertEquals(CancelReply.Outcome.UNKNOWN, noSandbox.outcome());
        assertTrue(noSandbox.message().contains("no sandbox"), noSandbox.message());
        assertFails(InvalidRequestException.class, node.cancel(Optional.empty(), "bad key with spaces"), "idempotency key");
        assertFails(InvalidRequestException.class, node.cancel(Optional.of("../x"), key()), "sandbox id");
    }

    @Test
    void outputPastTheBufferIsDroppedAndCountedButTheResultHasAll() {
        int total = 300_000;
        ConcurrentLinkedQueue<OutputChunk> chunks = new ConcurrentLinkedQueue<>();
        ExecutionOutcome.Completed done = completed(await(node.execute(Optional.empty(),
                python("import sys\nsys.stdout.write('x' * " + total + ")\n", limits), key(), chunks::add)));
        assertEquals(total, done.result().stdout().length(), "the result holds everything");
        long received = chunks.stream().mapToLong(c -> c.data().length).sum();
        long dropped = chunks.stream().mapToLong(OutputChunk::droppedBefore).sum();
        assertTrue(dropped > 0, "a buffer of " + BUFFER + " bytes and no flush for an hour must drop");
        assertTrue(received <= BUFFER + MAX_CHUNK, "bounded: received " + received);
        assertEquals(total, received + dropped, "every byte is either delivered or counted as dropped");
        assertTrue(chunks.stream().allMatch(c -> c.data().length <= MAX_CHUNK), "no chunk over max-chunk-bytes");
        List<Long> sequences = chunks.stream().map(OutputChunk::sequence).toList();
        assertEquals(java.util.stream.LongStream.range(0, sequences.size()).boxed().toList(), sequences);
    }

    @Test
    void chunksNeverCutACharacterInTwoEvenWhenDropping() {
        ConcurrentLinkedQueue<OutputChunk> chunks = new ConcurrentLinkedQueue<>();
        String code = "import sys\nfor i in range(4000):\n    sys.stdout.write('é€😀'[i % 3] * (i % 5 + 1))\n";
        ExecutionOutcome.Completed done = completed(await(node.execute(Optional.empty(), python(code, limits), key(),
                chunks::add)));
        assertEquals(Verdict.OK, done.result().verdict());
        assertFalse(chunks.isEmpty());
        for (OutputChunk chunk : chunks) {
            assertFalse(chunk.text().contains("\uFFFD"), "chunk " + chunk + " splits a character: "
                    + java.util.HexFormat.of().formatHex(chunk.data()) + " all: " + chunks);
        }
        assertTrue(chunks.stream().mapToLong(OutputChunk::droppedBefore).sum() > 0, "this output overflows the buffer");
    }

    @Test
    void filesGoThroughTheSandboxToItsContainer() {
        SandboxView sandbox = await(node.createSandbox("python", limits));
        String id = sandbox.sandboxId();
        // The first write opens the container: the run after it finds the file.
        await(node.writeFile(id, "in/data.txt", "21".getBytes(StandardCharsets.UTF_8)));
        assertTrue(await(node.sandbox(id)).worker().isPresent(), "the write bound the sandbox to a worker");
        ExecutionOutcome.Completed run = completed(await(node.execute(Optional.of(id), python(
                "import os\nv = int(open('in/data.txt').read())\nopen('out.txt', 'w').write(str(v * 2))\n"
                        + "os.symlink('/etc/passwd', 'link')\n", limits), key())));
        assertEquals(Verdict.OK, run.result().verdict(), run.result().stderr());
        assertArrayEquals("42".getBytes(StandardCharsets.UTF_8), await(node.readFile(id, "out.txt", 100)));

        assertFails(SandboxFileException.class, node.readFile(id, "missing.txt", 100), "no such file", SandboxFileException.Kind.NOT_FOUND);
        assertFails(SandboxFileException.class, node.readFile(id, "link", 100_000), "no such file", SandboxFileException.Kind.NOT_FOUND);
        assertFails(SandboxFileException.class, node.readFile(id, "out.txt", 1), "too large", SandboxFileException.Kind.TOO_LARGE);
        assertFails(InvalidRequestException.class, node.readFile(id, "../etc/passwd", 100), "'..'");
        assertFails(InvalidRequestException.class, node.writeFile(id, "/etc/x", new byte[1]), "absolute");
        assertFails(InvalidRequestException.class, node.writeFile(id, "a\0b", new byte[1]), "NUL");
        assertFails(InvalidRequestException.class, node.writeFile(id, "big", new byte[node.settings().files().maxBytes() + 1]),
                "more than");
        assertFails(InvalidRequestException.class, node.readFile(id, "out.txt", 0), "maxBytes");
        assertFails(SandboxFileException.class, node.readFile("never-made-" + UUID.randomUUID(), "a", 10), "no sandbox",
                SandboxFileException.Kind.NO_SANDBOX);

        SandboxView fresh = await(node.createSandbox("python", limits));
        assertFails(SandboxFileException.class, node.readFile(fresh.sandboxId(), "a.txt", 10), "no files yet",
                SandboxFileException.Kind.NOT_FOUND);
        await(node.closeSandbox(id));
        await(node.closeSandbox(fresh.sandboxId()));
        assertFails(SandboxFileException.class, node.writeFile(id, "a.txt", new byte[1]), "closed",
                SandboxFileException.Kind.NO_SANDBOX);
    }

    @Test
    void cancellingInASandboxStopsTheRunAndAQueuedOneThenTheSandboxGoesOn() throws Exception {
        String id = await(node.createSandbox("python", limits)).sandboxId();
        await(node.writeFile(id, "keep.txt", "kept".getBytes(StandardCharsets.UTF_8)));
        String running = key();
        CompletableFuture<OutputChunk> started = new CompletableFuture<>();
        CompletionStage<ExecutionOutcome> first = node.execute(Optional.of(id), python(STARTED_THEN_SLEEPS, limits), running,
                waitFor("started", started));
        started.get(TestNodes.WAIT.toSeconds(), TimeUnit.SECONDS);
        String waiting = key();
        CompletionStage<ExecutionOutcome> second = node.execute(Optional.of(id),
                python("open('second.txt', 'w').write('ran')", limits), waiting);
        // The second waits behind the first in the sandbox (one run at a time): cancel it there.
        TestNodes.eventually("the second execution waiting in the sandbox", () ->
                await(node.cancel(Optional.of(id), waiting)).outcome() == CancelReply.Outcome.CANCELLING);
        assertEquals(CancelReply.Outcome.CANCELLING, await(node.cancel(Optional.of(id), running)).outcome());

        assertEquals(Verdict.CANCELLED, completed(await(first)).result().verdict());
        ExecutionOutcome.Completed skipped = completed(await(second));
        assertEquals(Verdict.CANCELLED, skipped.result().verdict());
        assertTrue(skipped.attempts().isEmpty(), "it never went to a worker");
        assertEquals(CancelReply.Outcome.ALREADY_FINISHED, await(node.cancel(Optional.of(id), waiting)).outcome());
        assertEquals(CancelReply.Outcome.UNKNOWN, await(node.cancel(Optional.of(id), key())).outcome());

        ExecutionOutcome.Completed after = completed(await(node.execute(Optional.of(id), python(
                "import os\nprint(open('keep.txt').read(), os.path.exists('second.txt'))", limits), key())));
        assertEquals("kept False\n", after.result().stdout(), "same workspace; the cancelled one never ran");
        assertTrue(after.workspaceLost().isEmpty());
        await(node.closeSandbox(id));
    }

    static void assertFails(Class<? extends Throwable> type, CompletionStage<?> stage, String fragment) {
        Throwable cause = failure(stage);
        assertInstanceOf(type, cause, String.valueOf(cause));
        assertTrue(String.valueOf(cause.getMessage()).contains(fragment), cause.getMessage());
    }

    static void assertFails(Class<? extends Throwable> type, CompletionStage<?> stage, String fragment,
                            SandboxFileException.Kind kind) {
        assertFails(type, stage, fragment);
        assertEquals(kind, ((SandboxFileException) failure(stage)).kind());
    }

    private static Throwable failure(CompletionStage<?> stage) {
        try {
            stage.toCompletableFuture().get(TestNodes.WAIT.toSeconds(), TimeUnit.SECONDS);
        } catch (ExecutionException e) {
            return e.getCause();
        } catch (Exception e) {
            throw new AssertionError(e);
        }
        throw new AssertionError("expected a failure");
    }
}
