package io.agentexec.sandbox.docker;

import io.agentexec.sandbox.agent.AgentChannel;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.URI;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A hijacked {@code POST /containers/{id}/attach} connection, held open for the life of a sandbox:
 * the agent's stdin and its multiplexed stdout/stderr. Written against the socket directly, so that
 * a request frame reaches the agent with one write and no copying thread in between.
 */
final class AttachStream implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(AttachStream.class);

    private final SocketChannel socket;
    private final String containerId;

    private AttachStream(SocketChannel socket, String containerId) {
        this.socket = socket;
        this.containerId = containerId;
    }

    static AttachStream open(URI dockerHost, String containerId, String apiVersion) throws IOException {
        SocketChannel socket;
        String scheme = dockerHost.getScheme();
        if ("unix".equals(scheme)) {
            socket = SocketChannel.open(StandardProtocolFamily.UNIX);
            socket.connect(UnixDomainSocketAddress.of(dockerHost.getPath()));
        } else if ("tcp".equals(scheme)) {
            socket = SocketChannel.open(new InetSocketAddress(dockerHost.getHost(), dockerHost.getPort()));
            socket.socket().setTcpNoDelay(true);
        } else {
            throw new IOException("attach supports unix:// and tcp:// Docker hosts, not " + dockerHost);
        }
        String request = "POST " + (apiVersion.isEmpty() ? "" : "/" + apiVersion) + "/containers/" + containerId
                + "/attach?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n"
                + "Host: docker\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
                + "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n";
        writeFully(socket, ByteBuffer.wrap(request.getBytes(StandardCharsets.US_ASCII)));
        String status = readHeaders(socket);
        if (!status.contains(" 101 ") && !status.contains(" 200 ")) {
            socket.close();
            throw new IOException("attach to " + containerId + " refused: " + status);
        }
        return new AttachStream(socket, containerId);
    }

    /** Reads the response head one byte at a time so that no stream byte after it is consumed. */
    private static String readHeaders(SocketChannel socket) throws IOException {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        ByteBuffer one = ByteBuffer.allocate(1);
        int state = 0;
        while (state < 4) {
            one.clear();
            if (socket.read(one) < 0) {
                throw new IOException("Docker closed the attach connection during its response");
            }
            byte b = one.get(0);
            head.write(b);
            state = (b == '\r' && (state == 0 || state == 2)) || (b == '\n' && (state == 1 || state == 3)) ? state + 1
                    : (b == '\r' ? 1 : 0);
            if (head.size() > 16384) {
                throw new IOException("attach response head too long");
            }
        }
        String text = head.toString(StandardCharsets.US_ASCII);
        return text.substring(0, text.indexOf('\r'));
    }

    private static void writeFully(SocketChannel socket, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            socket.write(buffer);
        }
    }

    /** The agent's stdin. SocketChannel reads and writes may proceed on different threads. */
    OutputStream stdin() {
        return new OutputStream() {
            @Override
            public void write(int b) throws IOException {
                write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
                writeFully(socket, ByteBuffer.wrap(b, off, len));
            }

            @Override
            public void close() throws IOException {
                // closing stdin ends the agent, which ends the container
                if (socket.isOpen()) {
                    socket.shutdownOutput();
                }
            }
        };
    }

    /** Demultiplexes Docker's stream frames on a daemon thread: stdout to the channel, stderr to the log. */
    void pumpTo(AgentChannel channel) {
        Thread t = new Thread(() -> {
            ByteBuffer header = ByteBuffer.allocate(8);
            ByteBuffer body = ByteBuffer.allocate(65536);
            String reason = "attach stream closed";
            try {
                for (;;) {
                    header.clear();
                    if (!readFully(header)) {
                        break;
                    }
                    int stream = header.get(0);
                    int size = header.getInt(4);
                    while (size > 0) {
                        body.clear();
                        body.limit(Math.min(size, body.capacity()));
                        if (!readFully(body)) {
                            size = -1;
                            break;
                        }
                        int n = body.limit();
                        if (stream == 1) {
                            channel.feed(body.array(), 0, n);
                        } else {
                            log.warn("sandbox container {}: {}", containerId.substring(0, 12),
                                    new String(body.array(), 0, n, StandardCharsets.UTF_8).strip());
                        }
                        size -= n;
                    }
                    if (size < 0) {
                        break;
                    }
                }
            } catch (IOException e) {
                reason = "attach stream failed: " + e.getMessage();
            }
            channel.endOfStream(reason + " (container " + containerId.substring(0, 12) + ")");
        }, "agentexec-attach-" + containerId.substring(0, 12));
        t.setDaemon(true);
        t.start();
    }

    private boolean readFully(ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) {
            if (socket.read(buffer) < 0) {
                return false;
            }
        }
        return true;
    }

    @Override
    public void close() {
        try {
            socket.close();
        } catch (IOException ignored) {
            // already closed
        }
    }
}
