package io.agentexec.gateway.http;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalLong;

/**
 * How long a client is taking to send its request, read off the connection's bytes: the request
 * line and headers must arrive within the header timeout, the body within the body timeout after
 * them. HTTP/1.1 requests are framed as the server frames them (Content-Length or chunked), so the
 * next request's clock starts at its first byte; a connection that opens with the HTTP/2 preface
 * (gRPC over h2c) is followed frame by frame: each stream the client opens must bring its headers
 * within the header timeout and end its side (END_STREAM) within the body timeout after them.
 *
 * <p>Only sending is timed: while the server answers (a long run's heartbeat, an event stream) nothing
 * here runs; idle connections are closed by the server's idle timeout. Bytes it cannot frame (a
 * malformed request, which the server refuses and closes, or an upgrade to another protocol) stop
 * the clock for the rest of the connection rather than cut it. Not thread-safe: one per connection,
 * fed in order. Times are {@link System#nanoTime()} values.
 */
final class RequestClock {
    /** The client connection preface of HTTP/2 (RFC 9113, 3.4). */
    private static final byte[] H2_PREFACE = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
    /** What is kept of one header line: enough for the framing headers; longer lines are the server's to refuse. */
    private static final int MAX_LINE = 256;
    private static final int H2_FRAME_HEADER = 9;
    private static final int H2_DATA = 0x0;
    private static final int H2_HEADERS = 0x1;
    private static final int H2_RST_STREAM = 0x3;
    private static final int H2_CONTINUATION = 0x9;
    private static final int H2_END_STREAM = 0x1;
    private static final int H2_END_HEADERS = 0x4;

    private enum Mode { START, HTTP1, H2, UNTIMED }

    private enum Http1 { IDLE, HEAD, BODY, CHUNK_SIZE, CHUNK_DATA, CHUNK_END, TRAILERS }

    /** The part of a request still to come, and by when. */
    enum Phase { HEADERS, BODY }

    record Overdue(Phase phase, String what) { }

    private final long headerTimeout;
    private final long bodyTimeout;
    private Mode mode = Mode.START;
    private int prefaceMatched;
    private final StringBuilder startBytes = new StringBuilder();

    // HTTP/1.1
    private Http1 state = Http1.HEAD;
    private long phaseStarted;
    private final StringBuilder line = new StringBuilder();
    private boolean firstLine = true;
    private long contentLength;
    private boolean chunked;
    private boolean upgrade;
    private long remaining;

    // HTTP/2: one frame reader per direction, and the client's streams still sending
    private final FrameReader fromClient = new FrameReader();
    private final FrameReader fromServer = new FrameReader();
    private final Map<Integer, Stream> streams = new HashMap<>();

    private static final class Stream {
        final long opened;
        OptionalLong headersDone = OptionalLong.empty();
        /** END_STREAM came (possibly on a HEADERS frame whose CONTINUATION is still to come). */
        boolean ended;

        Stream(long opened) {
            this.opened = opened;
        }
    }

    /** The first request's clock starts with the connection: a client that connects and sends nothing is slow too. */
    RequestClock(Duration headerTimeout, Duration bodyTimeout, long connectedAt) {
        this.headerTimeout = headerTimeout.toNanos();
        this.bodyTimeout = bodyTimeout.toNanos();
        this.phaseStarted = connectedAt;
    }

    /** The next deadline (nanoTime), if the client is sending something that must arrive by then. */
    OptionalLong deadline() {
        switch (mode) {
            case START:
                return OptionalLong.of(phaseStarted + headerTimeout);
            case HTTP1:
                if (state == Http1.IDLE) {
                    return OptionalLong.empty();
                }
                return OptionalLong.of(phaseStarted + (state == Http1.HEAD ? headerTimeout : bodyTimeout));
            case H2:
                OptionalLong earliest = OptionalLong.empty();
                for (Stream s : streams.values()) {
                    long d = streamDeadline(s);
                    if (earliest.isEmpty() || d - earliest.getAsLong() < 0) {
                        earliest = OptionalLong.of(d);
                    }
                }
                return earliest;
            default:
                return OptionalLong.empty();
        }
    }

    /** What is overdue at {@code now}, if anything: the connection should then be closed. */
    Optional<Overdue> overdue(long now) {
        OptionalLong deadline = deadline();
        if (deadline.isEmpty() || now - deadline.getAsLong() < 0) {
            return Optional.empty();
        }
        if (mode == Mode.H2) {
            boolean headers = streams.values().stream().anyMatch(s -> s.headersDone.isEmpty()
                    && now - (s.opened + headerTimeout) >= 0);
            return Optional.of(headers ? new Overdue(Phase.HEADERS, "an HTTP/2 stream's headers")
                    : new Overdue(Phase.BODY, "an HTTP/2 stream's body"));
        }
        if (mode == Mode.START) {
            return Optional.of(new Overdue(Phase.HEADERS, "the first request's headers"));
        }
        return Optional.of(state == Http1.HEAD ? new Overdue(Phase.HEADERS, "the request's headers")
                : new Overdue(Phase.BODY, "the request's body"));
    }

    private long streamDeadline(Stream s) {
        return s.headersDone.isEmpty() ? s.opened + headerTimeout : s.headersDone.getAsLong() + bodyTimeout;
    }

    // ---- bytes from the client

    void onClientBytes(byte[] bytes, long now) {
        int i = 0;
        while (i < bytes.length) {
            switch (mode) {
                case START -> i = start(bytes, i, now) + 1;
                case HTTP1 -> {
                    if (state == Http1.BODY || state == Http1.CHUNK_DATA) {
                        // a body's bytes are only counted, a run of them at a time
                        int take = (int) Math.min(remaining, bytes.length - i);
                        remaining -= take;
                        i += take;
                        if (remaining == 0) {
                            if (state == Http1.BODY) {
                                requestDone();
                            } else {
                                state = Http1.CHUNK_END;
                            }
                        }
                    } else {
                        http1(bytes[i], now);
                        i++;
                    }
                }
                case H2 -> i = fromClient.read(bytes, i, now, true);
                default -> {
                    return;
                }
            }
        }
    }

    /** Whether {@link #onServerBytes} needs the server's bytes (it follows HTTP/2 streams only). */
    boolean wantsServerBytes() {
        return mode == Mode.H2;
    }

    /** Whether nothing this connection sends is timed any more (an upgrade, or framing left to the server). */
    boolean untimed() {
        return mode == Mode.UNTIMED;
    }

    /** Tells HTTP/2 from HTTP/1.1 by the preface; returns the index of the last byte it consumed. */
    private int start(byte[] bytes, int i, long now) {
        if (bytes[i] == H2_PREFACE[prefaceMatched]) {
            startBytes.append((char) (bytes[i] & 0xff));
            prefaceMatched++;
            if (prefaceMatched == H2_PREFACE.length) {
                mode = Mode.H2;
            }
            return i;
        }
        // not HTTP/2: what looked like its preface was the start of an HTTP/1.1 request line
        mode = Mode.HTTP1;
        state = Http1.HEAD;
        for (int k = 0; k < startBytes.length(); k++) {
            http1((byte) startBytes.charAt(k), now);
        }
        startBytes.setLength(0);
        http1(bytes[i], now);
        return i;
    }

    private void http1(byte b, long now) {
        switch (state) {
            case IDLE -> {
                if (b == '\r' || b == '\n') {
                    return; // an empty line before a request is allowed (RFC 9112, 2.2)
                }
                state = Http1.HEAD;
                phaseStarted = now;
                firstLine = true;
                contentLength = 0;
                chunked = false;
                upgrade = false;
                appendToLine(b);
            }
            case HEAD -> {
                if (b != '\n') {
                    appendToLine(b);
                    return;
                }
                String l = takeLine();
                if (firstLine) {
                    firstLine = false;
                    return;
                }
                if (!l.isEmpty()) {
                    header(l);
                    return;
                }
                endOfHead(now);
            }
            case CHUNK_SIZE -> {
                if (b != '\n') {
                    appendToLine(b);
                    return;
                }
                String size = takeLine();
                int end = 0;
                while (end < size.length() && Character.digit(size.charAt(end), 16) >= 0) {
                    end++;
                }
                if (end == 0 || end > 15) {
                    mode = Mode.UNTIMED; // not a chunk size the server accepts either: it refuses and closes
                    return;
                }
                remaining = Long.parseLong(size.substring(0, end), 16);
                state = remaining == 0 ? Http1.TRAILERS : Http1.CHUNK_DATA;
            }
            case CHUNK_END -> {
                if (b == '\n') {
                    state = Http1.CHUNK_SIZE;
                }
            }
            case TRAILERS -> {
                if (b != '\n') {
                    appendToLine(b);
                    return;
                }
                if (takeLine().isEmpty()) {
                    requestDone();
                }
            }
            default -> throw new IllegalStateException("unknown state " + state);
        }
    }

    private void header(String l) {
        int colon = l.indexOf(':');
        if (colon <= 0) {
            return;
        }
        String name = l.substring(0, colon).trim().toLowerCase(Locale.ROOT);
        String value = l.substring(colon + 1).trim().toLowerCase(Locale.ROOT);
        switch (name) {
            case "content-length" -> {
                try {
                    contentLength = Long.parseLong(value);
                } catch (NumberFormatException e) {
                    contentLength = -1;
                }
            }
            case "transfer-encoding" -> {
                String[] codings = value.split(",");
                chunked = codings[codings.length - 1].trim().equals("chunked");
            }
            case "upgrade" -> upgrade = true;
            default -> {
                // other headers do not frame the request
            }
        }
    }

    private void endOfHead(long now) {
        if (upgrade || contentLength < 0) {
            // another protocol follows, or framing the server will refuse: stop timing this connection
            mode = Mode.UNTIMED;
            return;
        }
        phaseStarted = now;
        if (chunked) {
            state = Http1.CHUNK_SIZE;
        } else if (contentLength > 0) {
            remaining = contentLength;
            state = Http1.BODY;
        } else {
            requestDone();
        }
    }

    private void requestDone() {
        state = Http1.IDLE;
    }

    private void appendToLine(byte b) {
        if (b == '\r') {
            return;
        }
        if (line.length() < MAX_LINE) {
            line.append((char) (b & 0xff));
        }
    }

    private String takeLine() {
        String l = line.toString();
        line.setLength(0);
        return l;
    }

    // ---- bytes from the server (only HTTP/2 needs them: a stream the server resets ends its clock)

    void onServerBytes(byte[] bytes, long now) {
        if (mode != Mode.H2) {
            return; // HTTP/1.1 is framed by the client's bytes alone; the server speaks HTTP/2 only after the preface
        }
        for (int i = 0; i < bytes.length; ) {
            i = fromServer.read(bytes, i, now, false);
        }
    }

    /** Reads HTTP/2 frame headers and skips their payloads, across chunk edges. */
    private final class FrameReader {
        private final byte[] header = new byte[H2_FRAME_HEADER];
        private int headerRead;
        private long payloadLeft;

        /** Consumes bytes from {@code i}; returns the index after the last one it consumed. */
        int read(byte[] bytes, int i, long now, boolean client) {
            if (payloadLeft > 0) {
                int skip = (int) Math.min(payloadLeft, bytes.length - i);
                payloadLeft -= skip;
                return i + skip;
            }
            header[headerRead++] = bytes[i];
            if (headerRead == H2_FRAME_HEADER) {
                headerRead = 0;
                int length = ((header[0] & 0xff) << 16) | ((header[1] & 0xff) << 8) | (header[2] & 0xff);
                int type = header[3] & 0xff;
                int flags = header[4] & 0xff;
                int stream = ((header[5] & 0x7f) << 24) | ((header[6] & 0xff) << 16) | ((header[7] & 0xff) << 8)
                        | (header[8] & 0xff);
                payloadLeft = length;
                frame(type, flags, stream, now, client);
            }
            return i + 1;
        }
    }

    private void frame(int type, int flags, int stream, long now, boolean client) {
        if (stream == 0) {
            return; // connection frames: settings, pings, window updates, goaway
        }
        if (type == H2_RST_STREAM) {
            streams.remove(stream); // either side gave the stream up: nothing more to wait for
            return;
        }
        if (!client) {
            return;
        }
        Stream s = streams.get(stream);
        if (s == null) {
            if (type != H2_HEADERS) {
                return; // a frame of a stream already done (or never opened): the server's to judge
            }
            s = new Stream(now);
            streams.put(stream, s);
        }
        if ((type == H2_HEADERS || type == H2_CONTINUATION) && (flags & H2_END_HEADERS) != 0 && s.headersDone.isEmpty()) {
            s.headersDone = OptionalLong.of(now);
        }
        if ((type == H2_HEADERS || type == H2_DATA) && (flags & H2_END_STREAM) != 0) {
            s.ended = true;
        }
        if (s.ended && s.headersDone.isPresent()) {
            streams.remove(stream);
        }
    }
}
