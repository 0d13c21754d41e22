package io.agentexec.sandbox.agent;

import java.util.function.Consumer;

/** Reassembles frames from the agent's byte stream, whatever sizes the transport delivers it in. */
final class FrameDecoder {
    private static final int HEADER = 5;
    private static final int MAX_PAYLOAD = 256 * 1024 * 1024;

    private final Consumer<Frame> sink;
    private final byte[] header = new byte[HEADER];
    private int headerFill;
    private byte[] payload;
    private int payloadFill;

    FrameDecoder(Consumer<Frame> sink) {
        this.sink = sink;
    }

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
                    int len = ((header[1] & 0xff) << 24) | ((header[2] & 0xff) << 16) | ((header[3] & 0xff) << 8) | (header[4] & 0xff);
                    if (len < 0 || len > MAX_PAYLOAD) {
                        throw new AgentException("agent sent a frame of " + Integer.toUnsignedString(len) + " bytes");
                    }
                    payload = new byte[len];
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

    private void emit() {
        Frame frame = new Frame(header[0], payload);
        payload = null;
        headerFill = 0;
        sink.accept(frame);
    }
}
