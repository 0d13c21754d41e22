package io.agentexec.gateway.executions;

import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.port.RunHandle;
import io.agentexec.gateway.spi.TenantId;
import io.agentexec.sandbox.agent.OutputListener;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * One execution the gateway follows: its output as events (a bounded replay for late followers),
 * then its outcome. Also the {@link OutputListener} handed to the backend.
 */
public final class TrackedExecution implements OutputListener {
    private final String id;
    private final TenantId tenant;
    private final Instant startedAt;
    private final int replayLimit;
    private final Deque<ExecutionEvent> replay = new ArrayDeque<>();
    private final List<Consumer<ExecutionEvent>> followers = new CopyOnWriteArrayList<>();
    private final Map<Stream, CharsetDecoder> decoders = new EnumMap<>(Stream.class);
    private final Map<Stream, ByteBuffer> pending = new EnumMap<>(Stream.class);
    private long sequence;
    private volatile Optional<ExecutionOutcome> outcome = Optional.empty();
    private volatile Optional<Instant> endedAt = Optional.empty();
    private volatile Optional<RunHandle> handle = Optional.empty();

    TrackedExecution(String id, TenantId tenant, Instant startedAt, int replayLimit) {
        this.id = id;
        this.tenant = tenant;
        this.startedAt = startedAt;
        this.replayLimit = replayLimit;
        for (Stream s : Stream.values()) {
            decoders.put(s, StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPLACE)
                    .onUnmappableCharacter(CodingErrorAction.REPLACE));
            pending.put(s, ByteBuffer.allocate(0));
        }
    }

    public String id() {
        return id;
    }

    public TenantId tenant() {
        return tenant;
    }

    public Instant startedAt() {
        return startedAt;
    }

    public Optional<ExecutionOutcome> outcome() {
        return outcome;
    }

    public Optional<Instant> endedAt() {
        return endedAt;
    }

    public void attach(RunHandle run) {
        handle = Optional.of(run);
    }

    public Optional<RunHandle> handle() {
        return handle;
    }

    /** Output arrives in byte chunks that may split a UTF-8 character: decode across chunk edges. */
    @Override
    public synchronized void onOutput(Stream stream, byte[] chunk) {
        if (outcome.isPresent()) {
            return;
        }
        ByteBuffer in = ByteBuffer.allocate(pending.get(stream).remaining() + chunk.length);
        in.put(pending.get(stream)).put(chunk).flip();
        CharBuffer out = CharBuffer.allocate(in.remaining() + 1);
        decoders.get(stream).decode(in, out, false);
        pending.put(stream, in.slice());
        out.flip();
        if (out.hasRemaining()) {
            publish(new ExecutionEvent.Output(++sequence, stream.name().toLowerCase(java.util.Locale.ROOT), out.toString()));
        }
    }

    public synchronized void complete(ExecutionOutcome result) {
        if (outcome.isPresent()) {
            return;
        }
        outcome = Optional.of(result);
        endedAt = Optional.of(Instant.now());
        publish(new ExecutionEvent.End(++sequence, result));
        followers.clear();
    }

    private void publish(ExecutionEvent event) {
        replay.addLast(event);
        while (replay.size() > replayLimit && replay.peekFirst() instanceof ExecutionEvent.Output) {
            replay.removeFirst();
        }
        for (Consumer<ExecutionEvent> f : followers) {
            f.accept(event);
        }
    }

    /** Replays what is kept, then delivers live events until the end; the returned handle stops it. */
    public synchronized AutoCloseable follow(Consumer<ExecutionEvent> follower) {
        for (ExecutionEvent e : new ArrayList<>(replay)) {
            follower.accept(e);
        }
        if (outcome.isEmpty()) {
            followers.add(follower);
        }
        return () -> followers.remove(follower);
    }
}
