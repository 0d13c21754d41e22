package io.agentexec.node;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A node on two CPUs runs its asynchronous stages on ForkJoinPool's common pool, not on a thread started per stage.
 * Each case is a JVM of its own told it has two CPUs, since the setting only holds before CompletableFuture is loaded.
 */
class AsyncStagesTest {

    /** Prints the name of the thread an asynchronous stage ran on; with "apply" it first does what main does. */
    public static final class Probe {
        public static void main(String[] args) throws Exception {
            if (args.length > 0 && args[0].equals("apply")) {
                AsyncStages.onTheCommonPool();
            }
            System.out.print(CompletableFuture.supplyAsync(() -> Thread.currentThread().getName()).get());
        }
    }

    @Test
    void onTwoCpusAStageRunsOnTheCommonPool() throws Exception {
        assertTrue(probe("apply").startsWith("ForkJoinPool.commonPool-worker"), "ran on " + probe("apply"));
    }

    @Test
    void withoutItTheJdkStartsAThreadPerStageOnTwoCpus() throws Exception {
        // The failure mode this guards against, shown on the JDK in use: were it to change, AsyncStages could go.
        assertTrue(probe("none").matches("Thread-\\d+"), "ran on " + probe("none"));
    }

    @Test
    void anOperatorsOwnParallelismIsKept() throws Exception {
        assertEquals("1", run(List.of("-D" + AsyncStages.PARALLELISM + "=1"), "apply-and-print-parallelism"));
    }

    private static String probe(String mode) throws Exception {
        return run(List.of(), mode);
    }

    private static String run(List<String> flags, String mode) throws IOException, InterruptedException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        var command = new java.util.ArrayList<>(List.of(java, "-XX:ActiveProcessorCount=2"));
        command.addAll(flags);
        if (mode.equals("apply-and-print-parallelism")) {
            command.addAll(List.of("-cp", System.getProperty("java.class.path"), ParallelismProbe.class.getName()));
        } else {
            command.addAll(List.of("-cp", System.getProperty("java.class.path"), Probe.class.getName(), mode));
        }
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "the probe JVM ended");
        assertEquals(0, p.exitValue(), out);
        return out;
    }

    /** Prints the common pool's parallelism after what main does. */
    public static final class ParallelismProbe {
        public static void main(String[] args) {
            AsyncStages.onTheCommonPool();
            System.out.print(java.util.concurrent.ForkJoinPool.getCommonPoolParallelism());
        }
    }
}
