package io.agentexec.sandbox.agent;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The controller's side of the agent protocol. A transport (a Docker attach stream, a child
 * process's pipes) feeds the agent's bytes in with {@link #feed}; requests go out through
 * {@code toAgent}. One request at a time: a sandbox session runs its blocks in order.
 */
public final class AgentChannel implements AutoCloseable {
    private static final int FLAG_TIMEOUT = 1;
    private static final int FLAG_STDOUT_TRUNCATED = 2;
    private static final int FLAG_STDERR_TRUNCATED = 4;
    private static final int FLAG_OUTPUT_LIMIT = 8;
    private static final int FLAG_OOM = 16;
    private static final int FLAG_SPAWN_FAILED = 32;
    private static final int FLAG_CANCELLED = 64;
    private static final int FLAG_ZYGOTE = 128;
    /** A write's mode flag: the run request that follows it runs the file (WRITE_THEN_RUN in agentexec-agent.c). */
    private static final int WRITE_THEN_RUN = 0x40000000;

    /** Changed-file reports one run may send: as many as the agent tracks (MAX_TRACKED_FILES in agentexec-agent.c). */
    static final int MAX_CHANGED_FILES = 4096;
    /** A changed-file report: the size (8 bytes) and a path the agent keeps under 4096 bytes. */
    static final int CHANGED_FILE_FRAME_MAX = 8 + 4096;
    /**
     * File data may exceed the size asked for by this much before it is a protocol violation; the agent sends at
     * most the size asked for (it refuses larger files), so this only leaves room for framing, never for content.
     */
    static final int FILE_DATA_SLACK = 64;
    /**
     * Replies (hello, ok, error, exit status, file data) received and not yet taken by a request. The protocol has
     * one request at a time, so at most a couple are ever waiting; more is a flood.
     */
    static final int MAX_QUEUED_REPLIES = 16;
    /** A run's start note (why a zygote asked for was not used): the agent's are under 1000 bytes. */
    static final int START_NOTE_FRAME_MAX = 1024;

    private final OutputStream toAgent;
    private final BlockingQueue<Frame> frames = new LinkedBlockingQueue<>();
    private final FrameDecoder decoder = new FrameDecoder(this::accept, this::payloadCap);
    /**
     * What the agent may send now, kept on the transport's side (it is updated as frames arrive, before they are
     * queued): a stream of valid frames past a run's limits ends the channel instead of growing the queue.
     * Guarded by itself; requests set it before they are sent.
     */
    private final Expected expected = new Expected();
    private volatile boolean ended;
    private volatile String endReason = "agent closed its output";

    /** The request in progress as the transport side sees it, and what it still allows. */
    private static final class Expected {
        boolean run;
        long stdoutLimit;
        long stderrLimit;
        long stdoutLeft;
        long stderrLeft;
        int changedFilesLeft;
        boolean startNoteSeen;
        long fileData = -1;
        int queuedReplies;
    }

    public AgentChannel(OutputStream toAgent) {
        this.toAgent = toAgent;
    }

    /**
     * Called by the transport with bytes the agent wrote. A frame the agent may not send now (too large for its
     * type, output past the run's limits, a reply nobody asked for) ends the channel: the session is broken and its
     * sandbox's later bytes are dropped.
     */
    public void feed(byte[] bytes, int offset, int length) {
        if (ended) {
            return;
        }
        try {
            decoder.feed(bytes, offset, length);
        } catch (AgentException e) {
            endOfStream(e.getMessage());
        }
    }

    /** The largest payload the agent may send in a frame of this type now; checked at the frame's header. */
    private long payloadCap(byte type) {
        return switch (type) {
            case Frame.STDOUT, Frame.STDERR -> FrameDecoder.OUTPUT_FRAME_MAX;
            case Frame.FILE_CHANGED -> CHANGED_FILE_FRAME_MAX;
            case Frame.START_NOTE -> START_NOTE_FRAME_MAX;
            case Frame.DATA -> {
                synchronized (expected) {
                    yield expected.fileData < 0 ? 0 : expected.fileData;
                }
            }
            default -> FrameDecoder.CONTROL_FRAME_MAX;
        };
    }

    /** Takes a decoded frame on the transport's thread: counts it against what the request in progress allows. */
    private void accept(Frame f) {
        synchronized (expected) {
            switch (f.type()) {
                case Frame.STDOUT, Frame.STDERR -> {
                    boolean stdout = f.type() == Frame.STDOUT;
                    if (!expected.run) {
                        throw new AgentException("agent sent output with no run in progress");
                    }
                    long left = stdout ? expected.stdoutLeft : expected.stderrLeft;
                    if (f.payload().length > left) {
                        throw new AgentException("agent sent " + (stdout ? "stdout" : "stderr") + " past the run's limit of "
                                + (stdout ? expected.stdoutLimit : expected.stderrLimit) + " bytes");
                    }
                    if (stdout) {
                        expected.stdoutLeft -= f.payload().length;
                    } else {
                        expected.stderrLeft -= f.payload().length;
                    }
                }
                case Frame.FILE_CHANGED -> {
                    if (!expected.run) {
                        throw new AgentException("agent reported a changed file with no run in progress");
                    }
                    if (--expected.changedFilesLeft < 0) {
                        throw new AgentException("agent reported more than " + MAX_CHANGED_FILES + " changed files for one run");
                    }
                }
                case Frame.START_NOTE -> {
                    if (!expected.run) {
                        throw new AgentException("agent sent a start note with no run in progress");
                    }
                    if (expected.startNoteSeen) {
                        throw new AgentException("agent sent more than one start note for one run");
                    }
                    expected.startNoteSeen = true;
                }
                case Frame.EXIT -> {
                    if (!expected.run) {
                        throw new AgentException("agent sent an exit status with no run in progress");
                    }
                    expected.run = false;
                    reply();
                }
                case Frame.DATA -> {
                    if (expected.fileData < 0) {
                        throw new AgentException("agent sent file data with no read in progress");
                    }
                    expected.fileData = -1;
                    reply();
                }
                case Frame.ERROR -> {
                    // The answer to whatever was asked: a refused run or read ends it.
                    expected.run = false;
                    expected.fileData = -1;
                    reply();
                }
                case Frame.HELLO, Frame.OK -> reply();
                default -> throw new AgentException("agent sent a frame of unknown type " + (f.type() & 0xff));
            }
        }
        frames.add(f);
    }

    private void reply() {
        if (++expected.queuedReplies > MAX_QUEUED_REPLIES) {
            throw new AgentException("agent sent more than " + MAX_QUEUED_REPLIES + " replies nobody asked for");
        }
    }

    /** Called by the transport when the agent's output ends (the agent or its sandbox died). */
    public void endOfStream(String reason) {
        if (!ended) {
            endReason = reason;
            ended = true;
            frames.add(Frame.END);
        }
    }

    public boolean isOpen() {
        return !ended;
    }

    /** Waits for the agent's greeting, which proves it started inside the sandbox. */
    public String awaitHello(Duration timeout) {
        Frame f = next(System.nanoTime() + timeout.toNanos(), "agent did not start within " + timeout.toMillis() + " ms");
        if (f.type() != Frame.HELLO) {
            throw new AgentException("agent greeted with frame '" + (char) f.type() + "'");
        }
        return new String(f.payload(), StandardCharsets.UTF_8);
    }

    public synchronized void ping(Duration timeout) {
        send(Frame.PING, new byte[0]);
        expectOk(System.nanoTime() + timeout.toNanos(), "ping");
    }

    /** Writes a workspace file; the agent refuses paths that leave the workspace or pass a symlink. */
    public synchronized void writeFile(String path, byte[] content, int mode, Duration timeout) {
        send(Frame.WRITE, writeRequest(path, content, mode, 0));
        expectOk(System.nanoTime() + timeout.toNanos(), "write " + path);
    }

    public synchronized byte[] readFile(String path, long maxBytes, Duration timeout) {
        Encoder e = new Encoder();
        e.string(path).u64(maxBytes);
        synchronized (expected) {
            expected.fileData = Math.min(FrameDecoder.FRAME_MAX, Math.max(0, maxBytes) + FILE_DATA_SLACK);
        }
        send(Frame.GET, e.toBytes());
        Frame f = next(System.nanoTime() + timeout.toNanos(), "agent did not answer read of " + path);
        if (f.type() == Frame.ERROR) {
            throw new AgentRefusal(new String(f.payload(), StandardCharsets.UTF_8));
        }
        if (f.type() != Frame.DATA) {
            throw new AgentException("unexpected frame '" + (char) f.type() + "' reading " + path);
        }
        return f.payload();
    }

    /**
     * Runs one process. The agent enforces the timeout and the caps; {@code backstop} is how long
     * past the timeout the controller waits before it declares the agent lost.
     */
    public synchronized RunOutcome run(RunSpec spec, OutputListener listener, Duration backstop) {
        byte[] run = runRequest(spec);
        expectRun(spec);
        send(Frame.RUN, run);
        return awaitRun(spec, listener, backstop);
    }

    /**
     * Writes a block's file and runs it in one exchange: both requests leave together, so a block costs one round
     * trip to the agent through the container runtime, not two. When the agent refuses the write (a path through a
     * symlink, a full disk), it refuses the run that follows it too and nothing starts: the write's refusal is thrown.
     */
    public synchronized RunOutcome writeAndRun(String path, byte[] content, int mode, Duration writeTimeout,
                                               RunSpec spec, OutputListener listener, Duration backstop) {
        byte[] write = writeRequest(path, content, mode, WRITE_THEN_RUN);
        byte[] run = runRequest(spec);
        expectRun(spec);
        send(frame(Frame.WRITE, write), frame(Frame.RUN, run));
        Frame written = next(System.nanoTime() + writeTimeout.toNanos(), "agent did not answer write " + path);
        if (written.type() == Frame.ERROR) {
            // The run's refusal follows; taken here so that the next request reads its own answer.
            Frame refused = next(System.nanoTime() + writeTimeout.toNanos(), "agent did not refuse the run after "
                    + "refusing write " + path);
            if (refused.type() != Frame.ERROR) {
                throw new AgentException("agent answered '" + (char) refused.type() + "' to a run whose file it refused");
            }
            throw new AgentRefusal(new String(written.payload(), StandardCharsets.UTF_8));
        }
        if (written.type() != Frame.OK) {
            throw new AgentException("unexpected frame '" + (char) written.type() + "' for write " + path);
        }
        return awaitRun(spec, listener, backstop);
    }

    /** A write request as handle_write reads it; the mode's flag bits are the protocol's, never the caller's. */
    private static byte[] writeRequest(String path, byte[] content, int mode, int flags) {
        if ((mode & ~07777) != 0) {
            throw new IllegalArgumentException("a file mode is 0 to 07777, got " + Integer.toOctalString(mode));
        }
        Encoder e = new Encoder();
        e.string(path).bytes(content).u32(mode | flags);
        return e.toBytes();
    }

    private static byte[] runRequest(RunSpec spec) {
        Encoder e = new Encoder();
        e.u32((int) Math.min(Integer.MAX_VALUE, spec.timeoutMillis()))
                .u64(spec.stdoutLimitBytes()).u64(spec.stderrLimitBytes()).u64(spec.fileSizeLimitBytes())
                .u64(spec.processLimit().orElse(0))
                .string(spec.workingDirectory())
                .u32(spec.argv().size());
        spec.argv().forEach(e::string);
        e.u32(spec.environment().size());
        for (Map.Entry<String, String> env : spec.environment().entrySet()) {
            e.string(env.getKey() + "=" + env.getValue());
        }
        e.bytes(spec.stdin());
        spec.zygote().ifPresent(z -> zygote(e, z));
        return e.toBytes();
    }

    /** What the agent may send for this run, set before its request leaves. */
    private void expectRun(RunSpec spec) {
        synchronized (expected) {
            expected.run = true;
            expected.stdoutLimit = Math.max(0, spec.stdoutLimitBytes());
            expected.stderrLimit = Math.max(0, spec.stderrLimitBytes());
            expected.stdoutLeft = expected.stdoutLimit;
            expected.stderrLeft = expected.stderrLimit;
            expected.changedFilesLeft = MAX_CHANGED_FILES;
            expected.startNoteSeen = false;
        }
    }

    private RunOutcome awaitRun(RunSpec spec, OutputListener listener, Duration backstop) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(spec.timeoutMillis()) + backstop.toNanos();
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        ByteArrayOutputStream combined = new ByteArrayOutputStream();
        List<RunOutcome.ChangedFile> changed = new ArrayList<>();
        String startNote = "";
        for (;;) {
            Frame f = next(deadline, "agent gave no result within the timeout plus " + backstop.toMillis() + " ms");
            switch (f.type()) {
                case Frame.STDOUT -> {
                    out.writeBytes(f.payload());
                    combined.writeBytes(f.payload());
                    listener.onOutput(OutputListener.Stream.STDOUT, f.payload());
                }
                case Frame.STDERR -> {
                    err.writeBytes(f.payload());
                    combined.writeBytes(f.payload());
                    listener.onOutput(OutputListener.Stream.STDERR, f.payload());
                }
                case Frame.FILE_CHANGED -> {
                    Decoder d = new Decoder(f.payload());
                    long size = d.u64();
                    changed.add(new RunOutcome.ChangedFile(d.rest(), size));
                }
                case Frame.START_NOTE -> startNote = new String(f.payload(), StandardCharsets.UTF_8);
                case Frame.ERROR -> throw new AgentException("agent refused the run: "
                        + new String(f.payload(), StandardCharsets.UTF_8));
                case Frame.EXIT -> {
                    Decoder d = new Decoder(f.payload());
                    int code = d.u32();
                    int signal = d.u32();
                    int flags = d.u32();
                    long wall = d.u64();
                    long rss = d.u64();
                    int spawnErrno = d.u32();
                    return new RunOutcome(code, signal, (flags & FLAG_TIMEOUT) != 0,
                            (flags & FLAG_STDOUT_TRUNCATED) != 0, (flags & FLAG_STDERR_TRUNCATED) != 0,
                            (flags & FLAG_OUTPUT_LIMIT) != 0, (flags & FLAG_OOM) != 0,
                            (flags & FLAG_SPAWN_FAILED) != 0, (flags & FLAG_CANCELLED) != 0, spawnErrno, wall, rss,
                            out.toByteArray(), err.toByteArray(), combined.toByteArray(), changed,
                            (flags & FLAG_ZYGOTE) != 0, startNote);
                }
                default -> throw new AgentException("unexpected frame '" + (char) f.type() + "' during a run");
            }
        }
    }

    /** The zygote section of a run (or of a scrub's prime), as agentexec-agent.c's rd_spec reads it. */
    private static void zygote(Encoder e, RunSpec.Zygote z) {
        e.u32(z.interpreterArguments()).u32(z.startArguments().size());
        z.startArguments().forEach(e::string);
        e.bytes(z.bootstrap())
                .u32((int) Math.min(Integer.MAX_VALUE, z.startTimeout().toMillis()))
                .u32((int) Math.min(Integer.MAX_VALUE, z.forkTimeout().toMillis()))
                .u32(z.forksPerZygote()).u32(z.maxRestarts()).u32(z.prepare() ? 1 : 0);
    }

    /**
     * Has the agent reset the sandbox for another one-off of the same owner (see {@link Scrub} and handle_scrub in
     * agentexec-agent.c). Returns once the agent confirmed that nothing of the last run is left.
     *
     * @throws AgentRefusal  when the agent found something it could not reset (named in the message)
     * @throws AgentException when it did not answer within {@code timeout}
     */
    public synchronized void scrub(Scrub scrub, Duration timeout) {
        Encoder e = new Encoder();
        e.u32(scrub.keepZygote() ? 1 : 0)
                .u32((int) Math.min(Integer.MAX_VALUE, scrub.killWait().toMillis()))
                .u32(scrub.directories().size());
        for (Scrub.Directory d : scrub.directories()) {
            e.string(d.path()).u32(d.mode());
        }
        e.u32(scrub.prime().isPresent() ? 1 : 0);
        scrub.prime().ifPresent(spec -> {
            e.string(spec.workingDirectory()).u32(spec.argv().size());
            spec.argv().forEach(e::string);
            e.u32(spec.environment().size());
            for (Map.Entry<String, String> env : spec.environment().entrySet()) {
                e.string(env.getKey() + "=" + env.getValue());
            }
            zygote(e, spec.zygote().orElseThrow());
        });
        send(Frame.SCRUB, e.toBytes());
        expectOk(System.nanoTime() + timeout.toNanos(), "scrub");
    }

    /**
     * Asks the agent to end the run in progress (it kills every process of the run and reports it
     * as cancelled). Not synchronized: it is called while {@link #run} holds the channel.
     */
    public void cancel() {
        send(Frame.CANCEL, new byte[0]);
    }

    private void expectOk(long deadline, String what) {
        Frame f = next(deadline, "agent did not answer " + what);
        if (f.type() == Frame.ERROR) {
            throw new AgentRefusal(new String(f.payload(), StandardCharsets.UTF_8));
        }
        if (f.type() != Frame.OK) {
            throw new AgentException("unexpected frame '" + (char) f.type() + "' for " + what);
        }
    }

    private Frame next(long deadlineNanos, String timeoutMessage) {
        try {
            long wait = deadlineNanos - System.nanoTime();
            Frame f = wait > 0 ? frames.poll(wait, TimeUnit.NANOSECONDS) : frames.poll();
            if (f == null) {
                throw new AgentException(timeoutMessage);
            }
            if (f == Frame.END) {
                frames.add(Frame.END); // stay ended for later callers
                throw new AgentException("sandbox agent is gone: " + endReason);
            }
            if (f.type() != Frame.STDOUT && f.type() != Frame.STDERR && f.type() != Frame.FILE_CHANGED
                    && f.type() != Frame.START_NOTE) {
                synchronized (expected) {
                    expected.queuedReplies--;
                }
            }
            return f;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AgentException("interrupted while waiting for the agent", e);
        }
    }

    private void send(byte type, byte[] payload) {
        send(frame(type, payload));
    }

    /** Sends the frames back to back, flushed once: requests sent together reach the agent together. */
    private void send(byte[]... frames) {
        if (ended) {
            throw new AgentException("sandbox agent is gone: " + endReason);
        }
        try {
            synchronized (toAgent) {
                for (byte[] f : frames) {
                    toAgent.write(f);
                }
                toAgent.flush();
            }
        } catch (IOException e) {
            endOfStream("writing to the agent failed: " + e.getMessage());
            throw new AgentException("cannot reach the sandbox agent: " + e.getMessage(), e);
        }
    }

    private static byte[] frame(byte type, byte[] payload) {
        byte[] frame = new byte[5 + payload.length];
        frame[0] = type;
        frame[1] = (byte) (payload.length >>> 24);
        frame[2] = (byte) (payload.length >>> 16);
        frame[3] = (byte) (payload.length >>> 8);
        frame[4] = (byte) payload.length;
        System.arraycopy(payload, 0, frame, 5, payload.length);
        return frame;
    }

    @Override
    public void close() {
        try {
            toAgent.close();
        } catch (IOException ignored) {
            // the agent ends on EOF; a broken stream means it has already ended
        }
    }

    private static final class Encoder {
        private final ByteArrayOutputStream buffer = new ByteArrayOutputStream();
        private final DataOutputStream data = new DataOutputStream(buffer);

        Encoder u32(int v) {
            try {
                data.writeInt(v);
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
            return this;
        }

        Encoder u64(long v) {
            try {
                data.writeLong(v);
            } catch (IOException e) {
                throw new IllegalStateException(e);
            }
            return this;
        }

        Encoder bytes(byte[] v) {
            u32(v.length);
            buffer.writeBytes(v);
            return this;
        }

        Encoder string(String v) {
            return bytes(v.getBytes(StandardCharsets.UTF_8));
        }

        byte[] toBytes() {
            return buffer.toByteArray();
        }
    }

    private static final class Decoder {
        private final byte[] bytes;
        private int pos;

        Decoder(byte[] bytes) {
            this.bytes = bytes;
        }

        int u32() {
            if (pos + 4 > bytes.length) {
                throw new AgentException("short frame from the agent");
            }
            int v = ((bytes[pos] & 0xff) << 24) | ((bytes[pos + 1] & 0xff) << 16) | ((bytes[pos + 2] & 0xff) << 8) | (bytes[pos + 3] & 0xff);
            pos += 4;
            return v;
        }

        long u64() {
            return ((long) u32() << 32) | (u32() & 0xffffffffL);
        }

        String rest() {
            return new String(bytes, pos, bytes.length - pos, StandardCharsets.UTF_8);
        }
    }
}
