package io.agentexec.gateway.http;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;

/** How {@link RequestClock} frames requests and when it says one is overdue; times are made-up nanos. */
class RequestClockTest {
    private static final long SECOND = 1_000_000_000L;
    private static final Duration HEADERS = Duration.ofSeconds(10);
    private static final Duration BODY = Duration.ofSeconds(60);

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    @Test
    void aConnectionThatSendsNothingMustStartItsRequestWithinTheHeaderTimeout() {
        RequestClock clock = new RequestClock(HEADERS, BODY, 0);
        assertEquals(OptionalLong.of(10 * SECOND), clock.deadline());
        assertTrue(clock.overdue(9 * SECOND).isEmpty());
        assertEquals(RequestClock.Phase.HEADERS, clock.overdue(10 * SECOND).orElseThrow().phase());
    }

    @Test
    void headersThenABodyByContentLengthThenIdleBetweenRequests() {
        RequestClock clock = new RequestClock(HEADERS, BODY, 0);
        clock.onClientBytes(ascii("POST /v1/executions HTTP/1.1\r\nHost: x\r\nContent-Len"), SECOND);
        assertEquals(OptionalLong.of(10 * SECOND), clock.deadline(), "the first request's clock runs from the connection");
        clock.onClientBytes(ascii("gth: 10\r\n\r\n01234"), 2 * SECOND);
        assertEquals(OptionalLong.of(62 * SECOND), clock.deadline(), "the body's clock runs from the end of the headers");
        assertEquals(RequestClock.Phase.BODY, clock.overdue(62 * SECOND).orElseThrow().phase());
        clock.onClientBytes(ascii("56789"), 3 * SECOND);
        assertEquals(OptionalLong.empty(), clock.deadline(), "between requests nothing is timed");
        // the next request's clock starts at its first byte (leading blank lines do not count)
        clock.onClientBytes(ascii("\r\n"), 100 * SECOND);
        assertEquals(OptionalLong.empty(), clock.deadline());
        clock.onClientBytes(ascii("G"), 200 * SECOND);
        assertEquals(OptionalLong.of(210 * SECOND), clock.deadline());
        clock.onClientBytes(ascii("ET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"), 201 * SECOND);
        assertEquals(OptionalLong.empty(), clock.deadline());
    }

    @Test
    void chunkedBodiesAndPipelinedRequestsInOneRead() {
        RequestClock clock = new RequestClock(HEADERS, BODY, 0);
        clock.onClientBytes(ascii("PUT /f HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                + "5;ext=1\r\nhello\r\n0\r\nX-Trailer: y\r\n\r\n"
                + "GET /healthz HTTP/1.1\r\n\r\n"
                + "PATCH /half HTTP/1.1\r\nHos"), SECOND);
        assertEquals(OptionalLong.of(11 * SECOND), clock.deadline(), "the third request's headers are on the clock");
        assertFalse(clock.untimed());
    }

    @Test
    void aTrickleOfHeaderBytesDoesNotResetTheClock() {
        RequestClock clock = new RequestClock(HEADERS, BODY, 0);
        clock.onClientBytes(ascii("GET / HTTP/1.1\r\nX-Slow: "), 0);
        for (int i = 1; i < 20; i++) {
            clock.onClientBytes(ascii("a"), i * SECOND);
        }
        assertTrue(clock.overdue(19 * SECOND).isPresent());
    }

    @Test
    void framingTheServerRefusesOrAnUpgradeStopsTheClock() {
        RequestClock bad = new RequestClock(HEADERS, BODY, 0);
        bad.onClientBytes(ascii("POST / HTTP/1.1\r\nContent-Length: many\r\n\r\n"), 0);
        assertTrue(bad.untimed());
        RequestClock upgrade = new RequestClock(HEADERS, BODY, 0);
        upgrade.onClientBytes(ascii("GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"), 0);
        assertTrue(upgrade.untimed());
    }

    @Test
    void http2StreamsMustSendTheirHeadersAndEndTheirSideInTime() {
        RequestClock clock = new RequestClock(HEADERS, BODY, 0);
        ByteArrayOutputStream client = new ByteArrayOutputStream();
        client.writeBytes(ascii("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        client.writeBytes(frame(0x4, 0, 0, 6)); // SETTINGS
        client.writeBytes(frame(0x1, 0x4, 1, 20)); // stream 1: HEADERS, END_HEADERS, body to follow
        clock.onClientBytes(client.toByteArray(), SECOND);
        assertEquals(OptionalLong.of(61 * SECOND), clock.deadline());
        // a DATA frame split across reads, ending the stream: nothing left to wait for
        byte[] data = frame(0x0, 0x1, 1, 5);
        clock.onClientBytes(java.util.Arrays.copyOfRange(data, 0, 4), 2 * SECOND);
        clock.onClientBytes(java.util.Arrays.copyOfRange(data, 4, data.length), 3 * SECOND);
        assertEquals(OptionalLong.empty(), clock.deadline());
        // stream 3: headers never finished (a CONTINUATION is due)
        clock.onClientBytes(frame(0x1, 0x1, 3, 10), 4 * SECOND);
        assertEquals(OptionalLong.of(14 * SECOND), clock.deadline());
        assertEquals(RequestClock.Phase.HEADERS, clock.overdue(14 * SECOND).orElseThrow().phase());
        // the server resets it: the client owes it nothing more
        clock.onServerBytes(frame(0x4, 0, 0, 0), 5 * SECOND);
        clock.onServerBytes(frame(0x3, 0, 3, 4), 5 * SECOND);
        assertEquals(OptionalLong.empty(), clock.deadline());
    }

    /** A frame header and a zero payload of {@code length} bytes. */
    private static byte[] frame(int type, int flags, int stream, int length) {
        byte[] f = new byte[9 + length];
        f[0] = (byte) (length >> 16);
        f[1] = (byte) (length >> 8);
        f[2] = (byte) length;
        f[3] = (byte) type;
        f[4] = (byte) flags;
        f[5] = (byte) (stream >> 24);
        f[6] = (byte) (stream >> 16);
        f[7] = (byte) (stream >> 8);
        f[8] = (byte) stream;
        return f;
    }
}
