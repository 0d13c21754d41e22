package io.agentexec.cluster.worker;

import io.agentexec.cluster.ClusterSettings.OutputSettings;
import io.agentexec.cluster.api.OutputChunk;
import io.agentexec.sandbox.agent.OutputListener;
import java.io.ByteArrayOutputStream;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.Scheduler;
import scala.concurrent.ExecutionContext;

/**
 * Sends a job's output to its subscribers while it runs, bounded: the engine's thread only appends
 * to a buffer of at most {@code bufferBytes} (more is dropped and counted); a batch of at most
 * {@code maxChunkBytes} leaves at most once per {@code flushInterval}, so a chatty program can never
 * flood the network or a subscriber. Thread-safe: the engine calls {@link #onOutput} on a slot
 * thread, the scheduler flushes on its own, the worker adds subscribers and closes it.
 */
final class OutputStreamer implements OutputListener {

    private static final class Segment {
        final Stream stream;
        final ByteArrayOutputStream bytes = new ByteArrayOutputStream();

        Segment(Stream stream) {
            this.stream = stream;
        }
    }

    private final String executionKey;
    private final OutputSettings settings;
    private final Scheduler scheduler;
    private final ExecutionContext executor;
    private final List<ActorRef<OutputChunk>> subscribers = new CopyOnWriteArrayList<>();
    private final ArrayDeque<Segment> pending = new ArrayDeque<>();
    private long pendingBytes;
    private long dropped;
    private long sequence;
    private long lastFlushNanos;
    private boolean flushScheduled;
    private boolean closed;
    private final boolean[] cutMidCharacter = new boolean[Stream.values().length];

    OutputStreamer(String executionKey, List<ActorRef<OutputChunk>> subscribers, OutputSettings settings,
                   Scheduler scheduler, ExecutionContext executor) {
        this.executionKey = executionKey;
        this.settings = settings;
        this.scheduler = scheduler;
        this.executor = executor;
        this.subscribers.addAll(subscribers);
        this.lastFlushNanos = System.nanoTime() - settings.flushInterval().toNanos();
    }

    /** A subscriber that joins late gets the output from now on. */
    void subscribe(ActorRef<OutputChunk> subscriber) {
        if (!subscribers.contains(subscriber)) {
            subscribers.add(subscriber);
        }
    }

    @Override
    public synchronized void onOutput(Stream stream, byte[] chunk) {
        if (closed || subscribers.isEmpty() || chunk.length == 0) {
            return;
        }
        int from = 0;
        if (cutMidCharacter[stream.ordinal()]) {
            // The bytes before were dropped inside a character: its remaining bytes go too.
            while (from < chunk.length && from < 3 && (chunk[from] & 0xC0) == 0x80) {
                from++;
            }
            dropped += from;
            cutMidCharacter[stream.ordinal()] = false;
        }
        int room = (int) Math.max(0, settings.bufferBytes() - pendingBytes);
        int kept = chunk.length - from;
        if (kept > room) {
            kept = room == 0 ? 0 : characterBoundary(chunk, from + room) - from;
            kept = Math.max(0, kept);
            cutMidCharacter[stream.ordinal()] = true;
        }
        dropped += chunk.length - from - kept;
        if (kept > 0) {
            Segment last = pending.peekLast();
            if (last == null || last.stream != stream) {
                last = new Segment(stream);
                pending.addLast(last);
            }
            last.bytes.write(chunk, from, kept);
            pendingBytes += kept;
        }
        if (flushScheduled) {
            return;
        }
        long wait = lastFlushNanos + settings.flushInterval().toNanos() - System.nanoTime();
        if (wait <= 0) {
            flush(false);
        } else {
            scheduleFlush(Duration.ofNanos(wait));
        }
    }

    /** The run ended: what is left goes now (in pieces of at most maxChunkBytes); later output is ignored. */
    synchronized void close() {
        if (closed) {
            return;
        }
        while (!pending.isEmpty() || dropped > 0) {
            if (!flush(true)) {
                break;
            }
        }
        closed = true;
    }

    private void scheduleFlush(Duration delay) {
        flushScheduled = true;
        scheduler.scheduleOnce(delay, this::scheduledFlush, executor);
    }

    private synchronized void scheduledFlush() {
        flushScheduled = false;
        if (!closed) {
            flush(false);
        }
    }

    /**
     * Sends up to maxChunkBytes from the front of the buffer. Not {@code last}: an incomplete UTF-8
     * character at the very end stays for the next flush, and the rest waits for the next interval.
     * Returns whether anything was sent.
     */
    private boolean flush(boolean last) {
        lastFlushNanos = System.nanoTime();
        int budget = settings.maxChunkBytes();
        boolean sent = false;
        while (budget > 0 && !pending.isEmpty()) {
            Segment segment = pending.peekFirst();
            byte[] bytes = segment.bytes.toByteArray();
            boolean onlyOne = pending.size() == 1;
            int end = Math.min(bytes.length, budget);
            if (end < bytes.length) {
                end = characterBoundary(bytes, end);
            } else if (onlyOne && !last) {
                end = bytes.length - incompleteTail(bytes);
            }
            if (end <= 0) {
                break;
            }
            send(segment.stream, Arrays.copyOfRange(bytes, 0, end));
            sent = true;
            budget -= end;
            pendingBytes -= end;
            if (end == bytes.length) {
                pending.pollFirst();
            } else {
                segment.bytes.reset();
                segment.bytes.write(bytes, end, bytes.length - end);
            }
        }
        if (!sent && dropped > 0 && pending.isEmpty()) {
            // Everything was dropped: say so even with no bytes left to carry the count.
            send(Stream.STDOUT, new byte[0]);
            sent = true;
        }
        if (!last && !pending.isEmpty() && pendingBytes > trailingHeldBack()) {
            scheduleFlush(settings.flushInterval());
        }
        return sent;
    }

    private long trailingHeldBack() {
        if (pending.size() != 1) {
            return 0;
        }
        return incompleteTail(pending.peekFirst().bytes.toByteArray());
    }

    private void send(Stream stream, byte[] data) {
        OutputChunk chunk = new OutputChunk(executionKey, sequence++, stream, data, dropped);
        dropped = 0;
        // tell never blocks: a remote subscriber's bytes wait in Artery's bounded outbound queue.
        subscribers.forEach(s -> s.tell(chunk));
    }

    /**
     * The largest cut at or before {@code end} that does not split a UTF-8 character (possibly 0:
     * nothing fits), or {@code end} when the bytes there are not UTF-8 anyway.
     */
    static int characterBoundary(byte[] bytes, int end) {
        for (int cut = end; cut >= Math.max(0, end - 3); cut--) {
            if ((bytes[cut] & 0xC0) != 0x80) {
                return cut;
            }
        }
        return end;
    }

    /** How many bytes at the end begin a UTF-8 character whose remaining bytes have not arrived yet. */
    static int incompleteTail(byte[] bytes) {
        int n = bytes.length;
        for (int back = 1; back <= Math.min(3, n); back++) {
            int b = bytes[n - back] & 0xFF;
            if ((b & 0xC0) == 0x80) {
                continue; // a continuation byte: look further back for its lead
            }
            int expected = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : b >= 0xC0 ? 2 : 1;
            return expected > back ? back : 0;
        }
        return 0;
    }
}
