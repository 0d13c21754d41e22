package io.agentexec.sandbox.agent;

import java.util.function.Consumer;

/**
 * Reassembles frames from the agent's byte stream, whatever sizes the transport delivers it in. A header's length is
 * never trusted: it is checked against the largest payload its frame type may have ({@link PayloadCap}) before
 * anything is allocated, so a forged header cannot make the controller buffer more than that.
 */
final class FrameDecoder {
    private static final int HEADER = 5;
    /** The agent reads a run's output in chunks of this size and sends each read as one frame (CHUNK in agentexec-agent.c). */
    static final int OUTPUT_FRAME_MAX = 65536;
    /**
     * Hello, ok, an error text (the agent's are under 1 KiB), an exit status (32 bytes), a changed file (a size and a
     * path under 4 KiB): every frame other than output and file data is small.
     */
    static final int CONTROL_FRAME_MAX = 16384;
    /** No frame is ever larger than the agent's own frame limit (MAX_FRAME in agentexec-agent.c). */
    static final int FRAME_MAX = 256 * 1024 * 1024;

    /** The largest payload a frame of the given type may have at this moment. */
    @FunctionalInterface
    interface PayloadCap {
        long of(byte type);
    }

    private final Consumer<Frame> sink;
    private final PayloadCap cap;
    private final byte[] header = new byte[HEADER];
    private int headerFill;
    private byte[] payload;
    private int payloadFill;

    FrameDecoder(Consumer<Frame> sink, PayloadCap cap) {
        this.sink = sink;
        this.cap = cap;
    }

    /** @throws AgentException when a header announces more than its type may carry (the stream is then unusable) */
    void feed(byte[] bytes, int offset, int length) {
        int i = offset;
        int end = offset + length;
        while (i < end) {
            if (payload == null) {
                int take = Math.min(HEADER - headerFill, end - i);
                System.arraycopy(bytes, i, header, headerFill, take);
                headerFill += take;
                i += take;
                if (headerFill == HEADER) {
                    long len = ((header[1] & 0xffL) << 24) | ((header[2] & 0xff) << 16) | ((header[3] & 0xff) << 8) | (header[4] & 0xff);
                    long max = Math.min(FRAME_MAX, cap.of(header[0]));
                    if (len > max) {
                        throw new AgentException("agent sent " + describe(header[0]) + " frame of " + len
                                + " bytes; at most " + max + " are allowed");
                    }
                    payload = new byte[(int) len];
                    payloadFill = 0;
                    if (len == 0) {
                        emit();
                    }
                }
            } else {
                int take = Math.min(payload.length - payloadFill, end - i);
                System.arraycopy(bytes, i, payload, payloadFill, take);
                payloadFill += take;
                i += take;
                if (payloadFill == payload.length) {
                    emit();
                }
            }
        }
    }

    /** A frame type as shown in messages: {@code 'o'}, or its number when it is not printable. */
    static String describe(byte type) {
        return type >= 0x21 && type < 0x7f ? "a '" + (char) type + "'" : "a type " + (type & 0xff);
    }

    private void emit() {
        Frame frame = new Frame(header[0], payload);
        payload = null;
        headerFill = 0;
        sink.accept(frame);
    }
}
