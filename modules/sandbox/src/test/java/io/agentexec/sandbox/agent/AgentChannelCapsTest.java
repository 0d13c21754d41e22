package io.agentexec.sandbox.agent;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;
import org.junit.jupiter.api.Test;

/**
 * The controller never trusts the agent's frame headers: crafted byte streams (what a compromised agent, or anything
 * else writing to the agent's stdout, could send) with oversized frames, or valid frames past a run's limits, end
 * the channel as broken instead of being buffered. The bytes kept stay within the caps.
 */
class AgentChannelCapsTest {
    /** Generous: only bounds a test that would otherwise hang; nothing here is timed. */
    private static final long WAIT_SECONDS = 30;

    private final ByteArrayOutputStream toAgent = new ByteArrayOutputStream();
    private final AgentChannel channel = new AgentChannel(toAgent);

    private static RunSpec spec(long stdoutLimit, long stderrLimit) {
        return new RunSpec(List.of("python3", "x.py"), Map.of(), "/workspace", new byte[0], 60_000, stdoutLimit,
                stderrLimit, 1 << 20, OptionalLong.empty());
    }

    private static byte[] frame(char type, byte[] payload) {
        byte[] f = Arrays.copyOf(header(type, payload.length), 5 + payload.length);
        System.arraycopy(payload, 0, f, 5, payload.length);
        return f;
    }

    private static byte[] header(char type, long length) {
        return new byte[] {(byte) type, (byte) (length >>> 24), (byte) (length >>> 16), (byte) (length >>> 8), (byte) length};
    }

    private static byte[] exit() {
        return frame('x', new byte[32]);
    }

    private void feed(byte[] bytes) {
        channel.feed(bytes, 0, bytes.length);
    }

    /** Starts the call on another thread and returns once its request reached the agent's side. */
    private <T> CompletableFuture<T> request(Supplier<T> call) throws InterruptedException {
        CompletableFuture<T> result = CompletableFuture.supplyAsync(call);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        while (toAgent.size() == 0 && !result.isDone() && System.nanoTime() < deadline) {
            Thread.sleep(5);
        }
        assertTrue(toAgent.size() > 0 || result.isDone(), "the request was sent");
        return result;
    }

    /** The call's failure; fails the test with what it returned when it did not fail. */
    private static Throwable failure(CompletableFuture<?> call) throws Exception {
        try {
            Object value = call.get(WAIT_SECONDS, TimeUnit.SECONDS);
            if (value instanceof RunOutcome o) {
                fail("the run ended normally with " + o.stdout().length + " bytes of stdout and " + o.stderr().length
                        + " of stderr");
            }
            if (value instanceof byte[] data) {
                fail("the read returned " + data.length + " bytes");
            }
            fail("the call returned " + value);
            return null;
        } catch (ExecutionException e) {
            return e.getCause();
        }
    }

    @Test
    void anOutputFrameLargerThanTheAgentsChunkIsRefusedAtItsHeader() throws Exception {
        CompletableFuture<RunOutcome> run = request(() -> channel.run(spec(1 << 20, 1 << 20), OutputListener.NONE,
                Duration.ofSeconds(5)));
        // Within the run's limit, but no agent ever sends an output frame larger than its read chunk.
        feed(frame('o', new byte[FrameDecoder.OUTPUT_FRAME_MAX + 1]));
        feed(exit());
        Throwable e = failure(run);
        assertTrue(e instanceof AgentException, e::toString);
        assertTrue(e.getMessage().contains("'o' frame of " + (FrameDecoder.OUTPUT_FRAME_MAX + 1) + " bytes"), e.getMessage());
        assertFalse(channel.isOpen(), "a protocol violation breaks the channel");
    }

    @Test
    void aHeaderClaimingHundredsOfMegabytesIsRefusedBeforeAnyPayload() throws Exception {
        CompletableFuture<RunOutcome> run = request(() -> channel.run(spec(1 << 20, 1 << 20), OutputListener.NONE,
                Duration.ofSeconds(5)));
        feed(header('x', 200L << 20)); // an exit frame claiming 200 MiB
        Throwable e = failure(run);
        assertTrue(e instanceof AgentException, e::toString);
        assertTrue(e.getMessage().contains("'x' frame of " + (200L << 20) + " bytes"), e.getMessage());
        assertFalse(channel.isOpen());
    }

    @Test
    void aFloodOfValidFramesPastTheRunsLimitEndsTheSessionAndKeepsAtMostTheCap() throws Exception {
        AtomicLong streamed = new AtomicLong();
        CompletableFuture<RunOutcome> run = request(() -> channel.run(spec(1000, 500),
                (stream, chunk) -> streamed.addAndGet(chunk.length), Duration.ofSeconds(5)));
        for (int i = 0; i < 100; i++) {
            feed(frame('o', "0123456789".repeat(10).getBytes(StandardCharsets.US_ASCII))); // 100 x 100 bytes
        }
        feed(exit());
        Throwable e = failure(run);
        assertTrue(e instanceof AgentException, e::toString);
        assertTrue(e.getMessage().contains("stdout past the run's limit of 1000 bytes"), e.getMessage());
        assertTrue(streamed.get() <= 1000, "streamed to the caller: " + streamed.get());
        assertFalse(channel.isOpen());
    }

    @Test
    void stderrIsCappedLikeStdout() throws Exception {
        CompletableFuture<RunOutcome> run = request(() -> channel.run(spec(1000, 10), OutputListener.NONE,
                Duration.ofSeconds(5)));
        feed(frame('e', new byte[11]));
        feed(exit());
        Throwable e = failure(run);
        assertTrue(e.getMessage().contains("stderr past the run's limit of 10 bytes"), e.getMessage());
    }

    @Test
    void outputExactlyAtTheLimitIsAResult() throws Exception {
        CompletableFuture<RunOutcome> run = request(() -> channel.run(spec(300, 0), OutputListener.NONE,
                Duration.ofSeconds(5)));
        for (int i = 0; i < 3; i++) {
            feed(frame('o', new byte[100]));
        }
        feed(exit());
        RunOutcome outcome = run.get(WAIT_SECONDS, TimeUnit.SECONDS);
        assertEquals(300, outcome.stdout().length);
        assertTrue(channel.isOpen());
    }

    @Test
    void outputWhenNoRunIsInProgressBreaksTheChannel() {
        feed(frame('o', "forged".getBytes(StandardCharsets.US_ASCII)));
        assertFalse(channel.isOpen(), "output with no run in progress is a protocol violation");
    }

    @Test
    void aFloodOfChangedFileFramesIsCapped() throws Exception {
        CompletableFuture<RunOutcome> run = request(() -> channel.run(spec(100, 100), OutputListener.NONE,
                Duration.ofSeconds(5)));
        byte[] changed = new byte[8 + 10];
        System.arraycopy("file000000".getBytes(StandardCharsets.US_ASCII), 0, changed, 8, 10);
        for (int i = 0; i <= AgentChannel.MAX_CHANGED_FILES; i++) {
            feed(frame('f', changed));
        }
        feed(exit());
        Throwable e = failure(run);
        assertTrue(e.getMessage().contains("changed files"), e.getMessage());
    }

    @Test
    void fileDataIsCappedAtTheRequestedMaximum() throws Exception {
        CompletableFuture<byte[]> read = request(() -> channel.readFile("a.txt", 10, Duration.ofSeconds(WAIT_SECONDS)));
        feed(frame('d', new byte[10 + AgentChannel.FILE_DATA_SLACK + 1]));
        Throwable e = failure(read);
        assertTrue(e instanceof AgentException, e::toString);
        assertTrue(e.getMessage().contains("'d' frame of"), e.getMessage());
        assertFalse(channel.isOpen());
    }

    @Test
    void fileDataWithinTheMaximumIsRead() throws Exception {
        CompletableFuture<byte[]> read = request(() -> channel.readFile("a.txt", 10, Duration.ofSeconds(WAIT_SECONDS)));
        feed(frame('d', "0123456789".getBytes(StandardCharsets.US_ASCII)));
        assertArrayEquals("0123456789".getBytes(StandardCharsets.US_ASCII), read.get(WAIT_SECONDS, TimeUnit.SECONDS));
        assertTrue(channel.isOpen());
    }

    @Test
    void aStartNoteLargerThanTheAgentsIsRefusedAtItsHeader() throws Exception {
        CompletableFuture<RunOutcome> run = request(() -> channel.run(spec(100, 100), OutputListener.NONE,
                Duration.ofSeconds(5)));
        feed(header('z', AgentChannel.START_NOTE_FRAME_MAX + 1));
        Throwable e = failure(run);
        assertTrue(e.getMessage().contains("'z' frame of"), e.getMessage());
        assertFalse(channel.isOpen());
    }

    @Test
    void oneStartNotePerRunIsKeptAndASecondBreaksTheChannel() throws Exception {
        CompletableFuture<RunOutcome> run = request(() -> channel.run(spec(100, 100), OutputListener.NONE,
                Duration.ofSeconds(5)));
        feed(frame('z', "plain start: why".getBytes(StandardCharsets.US_ASCII)));
        byte[] exit = new byte[32];
        exit[11] = (byte) 128; // the zygote flag, with a note: what a forged stream could say; the note is kept as sent
        feed(frame('x', exit));
        RunOutcome outcome = run.get(WAIT_SECONDS, TimeUnit.SECONDS);
        assertEquals("plain start: why", outcome.startNote());
        assertTrue(outcome.zygote());
        toAgent.reset(); // so that request() sees the second request go out
        CompletableFuture<RunOutcome> second = request(() -> channel.run(spec(100, 100), OutputListener.NONE,
                Duration.ofSeconds(5)));
        feed(frame('z', new byte[10]));
        feed(frame('z', new byte[10]));
        feed(exit());
        Throwable e = failure(second);
        assertTrue(e.getMessage().contains("more than one start note"), e.getMessage());
        assertFalse(channel.isOpen());
    }

    @Test
    void aStartNoteWithNoRunInProgressBreaksTheChannel() {
        feed(frame('z', "forged".getBytes(StandardCharsets.US_ASCII)));
        assertFalse(channel.isOpen());
    }

    @Test
    void controlFramesAreSmall() {
        feed(header('h', FrameDecoder.CONTROL_FRAME_MAX + 1));
        assertFalse(channel.isOpen(), "a greeting larger than any control frame breaks the channel");
    }

    @Test
    void unexpectedRepliesCannotPileUp() {
        for (int i = 0; i <= AgentChannel.MAX_QUEUED_REPLIES; i++) {
            feed(frame('k', new byte[0]));
        }
        assertFalse(channel.isOpen(), "a flood of replies nobody asked for breaks the channel");
    }
}
