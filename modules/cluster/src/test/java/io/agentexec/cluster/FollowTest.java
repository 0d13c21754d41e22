package io.agentexec.cluster;

import static io.agentexec.cluster.TestNodes.await;
import static io.agentexec.cluster.TestNodes.completed;
import static io.agentexec.cluster.TestNodes.python;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.OutputChunk;
import io.agentexec.cluster.execution.ExecutionEntity;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * {@link AgentexecCluster#follow}: another caller (another gateway node) follows an execution it did
 * not start, by its key alone, and never starts one. One node, H2 in a temp dir, real Docker.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class FollowTest {
    private AgentexecCluster node;
    private Limits limits;

    @BeforeAll
    void start() throws Exception {
        Path data = Files.createTempDirectory("agentexec-follow");
        node = TestNodes.start(TestNodes.common(TestNodes.freePort(), List.of(), "gateway,worker") + TestNodes.h2(data));
        limits = node.engine().orElseThrow().defaultLimits().withTimeout(Duration.ofSeconds(60));
        TestNodes.awaitWorkers(node, 1);
    }

    @AfterAll
    void stop() {
        if (node != null) {
            node.close();
        }
    }

    @Test
    void anUnknownKeyIsNotFoundAndNothingStarts() {
        String key = "follow-unknown-" + UUID.randomUUID();
        ExecutionOutcome reply = await(node.follow(key, limits.timeout(), chunk -> { }));
        assertInstanceOf(ExecutionOutcome.NotFound.class, reply);
        ExecutionEntity.ExecutionView view = await(node.execution(key));
        assertFalse(view.accepted() || view.dispatching() || view.outcome().isPresent(), view.toString());
    }

    @Test
    void aFollowerGetsTheLiveOutputAndTheSameTerminalReply() {
        String key = "follow-live-" + UUID.randomUUID();
        CompletableFuture<ExecutionOutcome> started = node.execute(Optional.empty(),
                python("import time\nfor i in range(600):\n    print('tick', i, flush=True)\n    time.sleep(0.1)", limits),
                key).toCompletableFuture();
        TestNodes.eventually("the execution is known", () -> {
            ExecutionEntity.ExecutionView view = await(node.execution(key));
            return view.accepted() || view.dispatching();
        });
        List<OutputChunk> chunks = new CopyOnWriteArrayList<>();
        CompletableFuture<ExecutionOutcome> followed = node.follow(key, limits.timeout(), chunks::add).toCompletableFuture();
        // a follower joins mid-run, maybe mid-line (print writes its pieces separately): the text is gathered
        TestNodes.eventually("output reaches the follower while the code runs", () ->
                chunks.stream().map(OutputChunk::text).collect(java.util.stream.Collectors.joining()).contains("tick"));
        assertFalse(started.isDone(), "the code still runs (a minute of ticks)");

        await(node.cancel(Optional.empty(), key));
        ExecutionOutcome.Completed ended = completed(await(started));
        assertEquals(Verdict.CANCELLED, ended.result().verdict());
        assertEquals(ended.result(), completed(await(followed)).result(), "the follower gets the one terminal reply");

        ExecutionOutcome later = await(node.follow(key, limits.timeout(), chunk -> { }));
        assertTrue(later.replayed());
        assertEquals(ended.result(), completed(later).result(), "after the end: the stored reply at once");
    }
}
