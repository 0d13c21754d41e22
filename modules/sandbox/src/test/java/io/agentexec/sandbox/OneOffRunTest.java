package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.exception.NotFoundException;
import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.docker.DockerBackend;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import io.agentexec.testkit.Await;

/** The engine's one path for a one-off run: pick the image, open, run, close; cancellable from another thread. */
class OneOffRunTest {
    /** Bounds on waiting for something the sandbox does; generous, never a speed requirement. */

    static Stream<BackendChoice> engines() {
        return Stream.of(BackendChoice.DOCKER, BackendChoice.BWRAP);
    }

    private static Limits limits(SandboxEngine engine) {
        return engine.defaultLimits().withTimeout(Duration.ofSeconds(60));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aOneOffRunsInTheImageOfItsFirstBlockAndEndsAsRan(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        try (OneOffRun run = engine.oneOff(ExecutionRequest.of("python", "print(6 * 7)", limits(engine)))) {
            assertEquals(Optional.empty(), run.ending());
            ExecutionResult r = run.execute(OutputListener.NONE);
            assertEquals(Verdict.OK, r.verdict(), r::toString);
            assertEquals("42\n", r.stdout());
            assertEquals(Optional.of(OneOffRun.Ending.RAN), run.ending());
            assertThrows(IllegalStateException.class, () -> run.execute(OutputListener.NONE), "a one-off runs once");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aCancelBeforeTheRunRunsNothing(BackendChoice backend) {
        SandboxEngine engine = Backends.engine(backend);
        String marker = "agentexec-never-" + UUID.randomUUID();
        try (OneOffRun run = engine.oneOff(ExecutionRequest.of("bash", "touch /tmp/" + marker, limits(engine)))) {
            run.cancel();
            ExecutionResult r = run.execute(OutputListener.NONE);
            assertEquals(Verdict.CANCELLED, r.verdict(), r::toString);
            assertTrue(r.message().contains("nothing ran"), r::message);
            assertEquals(Optional.of(OneOffRun.Ending.CANCELLED_BEFORE_START), run.ending());
        }
    }

    /**
     * A cancel that lands while no block runs (here: the first block's process has ended and been reaped, the next not
     * begun) still stops the run: the engine repeats it until the run ends. Before the repeat, such a cancel was lost
     * and the second block ran to its timeout (verdict TIMEOUT after 60 s).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("engines")
    void aCancelBetweenTwoBlocksStopsTheRun(BackendChoice backend) throws Exception {
        SandboxEngine engine = Backends.engine(backend);
        String first = "agentexec-first-" + UUID.randomUUID();
        String second = "agentexec-second-" + UUID.randomUUID();
        ExecutionRequest request = ExecutionRequest.builder(limits(engine))
                .block("bash", "echo first; exec -a " + first + " sleep 3")
                .block("bash", "echo second; exec -a " + second + " sleep 1000")
                .build();
        AtomicBoolean cancelled = new AtomicBoolean();
        try (OneOffRun run = engine.oneOff(request)) {
            OutputListener listener = (stream, chunk) -> {
                if (cancelled.get() || !new String(chunk, StandardCharsets.UTF_8).contains("first")) {
                    return;
                }
                // The first block's process, seen from the host, then gone for good (reaped by the agent): from then
                // on the agent no longer reads a cancel for that block, and the second has not begun.
                long pid = Await.until("the first block's process", () -> HostProcesses.withMarker(first).stream().findFirst());
                Await.until("the first block's process reaped", () -> !Files.exists(Path.of("/proc", String.valueOf(pid))));
                CompletableFuture.runAsync(run::cancel).join();
                cancelled.set(true);
            };
            ExecutionResult r = run.execute(listener);
            assertTrue(cancelled.get(), "the test cancelled between the blocks");
            assertEquals(Verdict.CANCELLED, r.verdict(), r::toString);
            assertTrue(r.stdout().startsWith("first\n"), r::stdout);
            assertEquals(List.of(Verdict.OK, Verdict.CANCELLED), r.blocks().stream().map(b -> b.verdict()).toList(),
                    "the second block had begun when the repeated cancel stopped it");
            assertEquals(Optional.of(OneOffRun.Ending.RAN), run.ending());
            assertEquals(List.of(), HostProcesses.withMarker(second));
        }
    }

    @Test
    void aMissingImageEndsWithoutASandboxNamingHowToGetIt() {
        SandboxEngine engine = Backends.docker();
        try (OneOffRun run = engine.oneOff(ExecutionRequest.builder(engine.defaultLimits())
                .block("python", "print(1)").image("agentexec/does-not-exist:1").build())) {
            ExecutionResult r = run.execute(OutputListener.NONE);
            assertEquals(Verdict.SANDBOX_ERROR, r.verdict());
            assertTrue(r.message().contains("images/build.sh"), r::message);
            assertEquals(Optional.of(OneOffRun.Ending.NO_SANDBOX), run.ending());
        }
    }

    /** The caller answers first, then closes: the container goes in the background, after close returned. */
    @Test
    void closingAfterTheAnswerRemovesTheContainer() throws Exception {
        SandboxEngine engine = Backends.docker();
        DockerBackend backend = (DockerBackend) engine.backend();
        DockerClient docker = backend.dockerClient();
        Set<String> before = new HashSet<>(backend.liveContainerIds());
        Set<String> during = new HashSet<>();
        OneOffRun run = engine.oneOff(ExecutionRequest.of("bash", "echo hi", limits(engine)));
        ExecutionResult r = run.execute((stream, chunk) -> during.addAll(backend.liveContainerIds()));
        assertEquals("hi\n", r.stdout(), r::toString);
        during.removeAll(before);
        assertEquals(1, during.size(), () -> "containers made for the run: " + during);
        String container = during.iterator().next();
        run.close();
        run.close(); // idempotent
        assertFalse(backend.liveContainerIds().contains(container));
        Await.until("container " + container + " removed", () -> {
            try {
                docker.inspectContainerCmd(container).exec();
                return false;
            } catch (NotFoundException e) {
                return true;
            }
        });
    }

}
