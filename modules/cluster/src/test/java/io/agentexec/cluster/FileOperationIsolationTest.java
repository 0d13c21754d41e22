package io.agentexec.cluster;

import static io.agentexec.cluster.TestNodes.await;
import static io.agentexec.cluster.TestNodes.completed;
import static io.agentexec.cluster.TestNodes.python;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.SandboxFileException;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * File operations stuck in one tenant's sandboxes (an agent blocked reading a FIFO, here stood for by
 * {@link FaultInjection#beforeFileOperation} holding the worker's file thread) never delay another
 * sandbox's run: file operations have their own bounded pool and queue, refused past it, and one that
 * outlives the worker's file-op-timeout marks its sandbox's container broken.
 */
class FileOperationIsolationTest {
    private static final String STUCK = "stuck-";

    private final CountDownLatch release = new CountDownLatch(1);
    private final AtomicInteger entered = new AtomicInteger();
    private AgentexecCluster node;

    private AgentexecCluster start(String extra) throws Exception {
        Path data = Files.createTempDirectory("agentexec-files");
        // A stuck operation stands still until the test releases it, as a read of a FIFO without a writer does.
        FaultInjection.beforeFileOperation = (sandboxId, path) -> {
            if (path.startsWith(STUCK)) {
                entered.incrementAndGet();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            }
        };
        node = TestNodes.start(TestNodes.common(TestNodes.freePort(), List.of(), "gateway,worker") + TestNodes.h2(data)
                + "agentexec.cluster.worker { slots = 2, queue = 4, file-threads = 2, file-queue = 2 }\n" + extra);
        TestNodes.awaitWorkers(node, 1);
        return node;
    }

    @AfterEach
    void stop() {
        release.countDown();
        FaultInjection.beforeFileOperation = (sandboxId, path) -> { };
        if (node != null) {
            node.close();
        }
    }

    @Test
    void stuckFileOperationsNeverDelayAnotherSandboxsRun() throws Exception {
        start("agentexec.cluster.worker.file-op-timeout = 5m\nagentexec.cluster.files.timeout = 6m\n");
        Limits limits = node.engine().orElseThrow().defaultLimits().withTimeout(Duration.ofSeconds(30));
        String other = await(node.createSandbox("python", limits)).sandboxId();
        completed(await(node.execute(Optional.of(other), python("print('warm')", limits), "warm-" + UUID.randomUUID())));

        // Six sandboxes of one tenant, each with a container, each asked for a file that never comes.
        List<String> stuckSandboxes = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            String id = await(node.createSandbox("python", limits)).sandboxId();
            await(node.writeFile(id, "ok.txt", "ok".getBytes(StandardCharsets.UTF_8)));
            stuckSandboxes.add(id);
        }
        List<CompletableFuture<byte[]>> reads = new ArrayList<>();
        for (String id : stuckSandboxes) {
            reads.add(node.readFile(id, STUCK + "fifo", 1024).toCompletableFuture());
        }
        // Two file threads stuck, two queued behind them, two refused at once (before: every pool thread stuck).
        TestNodes.eventually("the file threads are taken and the rest answered",
                () -> entered.get() + reads.stream().filter(CompletableFuture::isDone).count() >= 4);

        CompletableFuture<ExecutionOutcome> run = node.execute(Optional.of(other), python("print(6 * 7)", limits),
                "other-" + UUID.randomUUID()).toCompletableFuture();
        ExecutionOutcome reply;
        try {
            reply = run.get(90, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            throw new AssertionError("another sandbox's run waited behind " + entered.get()
                    + " stuck file operations (the file operations took the run's threads)");
        }
        assertEquals("42\n", completed(reply).result().stdout());
        assertEquals(Verdict.OK, completed(reply).result().verdict());
        assertEquals(1, release.getCount(), "the run completed while the file operations were still stuck");
        assertEquals(2, entered.get(), "only the file threads are ever stuck: " + entered.get());

        List<CompletableFuture<byte[]>> refused = reads.stream().filter(CompletableFuture::isDone).toList();
        assertEquals(2, refused.size(), "past file-threads + file-queue, file operations are refused at once: "
                + refused.stream().map(r -> r.handle((v, e) -> String.valueOf(e)).join()).toList());
        for (CompletableFuture<byte[]> read : refused) {
            SandboxFileException busy = assertInstanceOf(SandboxFileException.class,
                    assertThrows(read).getCause());
            assertEquals(SandboxFileException.Kind.BUSY, busy.kind(), busy.getMessage());
            assertTrue(busy.getMessage().contains("agentexec.cluster.worker.file-queue"), busy.getMessage());
        }

        release.countDown();
        for (CompletableFuture<byte[]> read : reads) {
            if (!refused.contains(read)) {
                // Released: the agent is asked at last, and there is no such file.
                SandboxFileException missing = assertInstanceOf(SandboxFileException.class,
                        assertThrows(read).getCause());
                assertEquals(SandboxFileException.Kind.NOT_FOUND, missing.kind(), missing.getMessage());
            }
        }
    }

    @Test
    void aFileOperationThatTimesOutMarksItsContainerBroken() throws Exception {
        start("agentexec.cluster.worker.file-op-timeout = 2s\nagentexec.cluster.files.timeout = 20s\n");
        Limits limits = node.engine().orElseThrow().defaultLimits().withTimeout(Duration.ofSeconds(30));
        String id = await(node.createSandbox("python", limits)).sandboxId();
        await(node.writeFile(id, "ok.txt", "ok".getBytes(StandardCharsets.UTF_8)));
        String worker = await(node.sandbox(id)).worker().orElseThrow();

        ExecutionException failed = assertThrows(node.readFile(id, STUCK + "fifo", 1024).toCompletableFuture());
        SandboxFileException timedOut = assertInstanceOf(SandboxFileException.class, failed.getCause());
        assertEquals(SandboxFileException.Kind.FAILED, timedOut.kind(), timedOut.getMessage());
        assertTrue(release.getCount() == 1 && entered.get() == 1, "answered while the operation was still stuck");

        // The container is treated as broken: unbound, and the next run opens a fresh one and says so.
        SandboxView view = await(node.sandbox(id));
        assertTrue(view.worker().isEmpty(), "the sandbox is no longer bound to " + worker + ": " + view);
        assertTrue(view.workspaceLostReason().isPresent(), view.toString());
        ExecutionOutcome.Completed next = completed(await(node.execute(Optional.of(id),
                python("import os; print(os.path.exists('ok.txt'))", limits), "after-" + UUID.randomUUID())));
        assertEquals("False\n", next.result().stdout());
        assertTrue(next.workspaceLost().isPresent(), "the next run says the workspace was lost");
        assertFalse(release.getCount() == 0, "still stuck: the caller never waited for it");
    }

    private static ExecutionException assertThrows(CompletableFuture<?> future) {
        try {
            Object value = future.get(TestNodes.WAIT.toSeconds(), TimeUnit.SECONDS);
            throw new AssertionError("expected a failure, got " + value);
        } catch (ExecutionException e) {
            return e;
        } catch (InterruptedException | TimeoutException e) {
            throw new AssertionError(e);
        }
    }
}
