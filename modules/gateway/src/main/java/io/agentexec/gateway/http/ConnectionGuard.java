package io.agentexec.gateway.http;

import io.agentexec.gateway.GatewaySettings;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.stream.Attributes;
import org.apache.pekko.stream.BidiShape;
import org.apache.pekko.stream.Inlet;
import org.apache.pekko.stream.Outlet;
import org.apache.pekko.stream.scaladsl.Tcp;
import org.apache.pekko.stream.stage.AbstractInHandler;
import org.apache.pekko.stream.stage.AbstractOutHandler;
import org.apache.pekko.stream.stage.GraphStage;
import org.apache.pekko.stream.stage.GraphStageLogic;
import org.apache.pekko.stream.stage.TimerGraphStageLogic;
import org.apache.pekko.util.ByteString;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What every connection to the node must keep to, below HTTP: at most {@code max-per-client} open
 * connections per client address (more are answered 429 and closed at once, so that one client
 * cannot take the node's connections from the others), and a request sent in time (the request line
 * and headers within {@code header-timeout}, the body within {@code body-timeout}; see
 * {@link RequestClock}), else the connection is closed. A stage on each connection's bytes, put there
 * by {@link GuardTelemetry} (pekko-http has no other hook below its HTTP/2-capable server).
 * One per actor system: {@link #install} before binding, {@link #uninstall} when stopping.
 */
public final class ConnectionGuard {
    private static final Logger log = LoggerFactory.getLogger(ConnectionGuard.class);
    private static final Map<ActorSystem, ConnectionGuard> INSTALLED = new ConcurrentHashMap<>();
    private static final String TIMER = "request-clock";

    /** Why a connection was closed, as metrics label it. */
    public enum Closed {
        TOO_MANY_PER_CLIENT("too_many_per_client"), HEADER_TIMEOUT("header_timeout"), BODY_TIMEOUT("body_timeout");

        private final String label;

        Closed(String label) {
            this.label = label;
        }

        public String label() {
            return label;
        }
    }

    private final GatewaySettings.ConnectionSettings settings;
    private final Consumer<Closed> onClosed;
    private final Map<InetAddress, Integer> open = new ConcurrentHashMap<>();

    public ConnectionGuard(GatewaySettings.ConnectionSettings settings, Consumer<Closed> onClosed) {
        this.settings = settings;
        this.onClosed = onClosed;
    }

    /** Guards every connection the actor system's HTTP servers accept from now on. */
    public static void install(ActorSystem system, ConnectionGuard guard) {
        INSTALLED.put(system, guard);
    }

    public static void uninstall(ActorSystem system, ConnectionGuard guard) {
        INSTALLED.remove(system, guard);
    }

    static Optional<ConnectionGuard> of(ActorSystem system) {
        return Optional.ofNullable(INSTALLED.get(system));
    }

    /** The connections this client holds now. */
    public int openFrom(InetAddress client) {
        return open.getOrDefault(client, 0);
    }

    Tcp.IncomingConnection wrap(Tcp.IncomingConnection connection) {
        InetAddress client = connection.remoteAddress().getAddress();
        return connection.copy(connection.localAddress(), connection.remoteAddress(),
                org.apache.pekko.stream.javadsl.BidiFlow.fromGraph(new Stage(client))
                        .join(connection.flow().asJava()).asScala());
    }

    private boolean admit(InetAddress client) {
        int limit = settings.maxPerClient();
        boolean[] admitted = {false};
        open.compute(client, (address, count) -> {
            int now = count == null ? 0 : count;
            if (limit > 0 && now >= limit) {
                return count;
            }
            admitted[0] = true;
            return now + 1;
        });
        return admitted[0];
    }

    private void release(InetAddress client) {
        open.computeIfPresent(client, (address, count) -> count <= 1 ? null : count - 1);
    }

    private static ByteString refusal(int limit) {
        byte[] body = Json.bytes(Json.error("too_many_connections", "this client already holds " + limit
                + " connections to this node (agentexec.gateway.connections.max-per-client); reuse one",
                "req-" + UUID.randomUUID()));
        String head = "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nContent-Length: " + body.length
                + "\r\nRetry-After: 1\r\nConnection: close\r\n\r\n";
        return ByteString.fromString(head, StandardCharsets.US_ASCII).concat(ByteString.fromArray(body));
    }

    /** Why the guard closed a connection: the client did not send its request in time. */
    static final class SlowClientException extends RuntimeException {
        SlowClientException(String message) {
            super(message, null, false, false);
        }
    }

    /** One connection: bytes pass both ways untouched; the client's are timed. */
    private final class Stage extends GraphStage<BidiShape<ByteString, ByteString, ByteString, ByteString>> {
        private final Inlet<ByteString> fromServer = Inlet.create("ConnectionGuard.fromServer");
        private final Outlet<ByteString> toClient = Outlet.create("ConnectionGuard.toClient");
        private final Inlet<ByteString> fromClient = Inlet.create("ConnectionGuard.fromClient");
        private final Outlet<ByteString> toServer = Outlet.create("ConnectionGuard.toServer");
        private final BidiShape<ByteString, ByteString, ByteString, ByteString> shape =
                BidiShape.of(fromServer, toClient, fromClient, toServer);
        private final InetAddress client;

        Stage(InetAddress client) {
            this.client = client;
        }

        @Override
        public BidiShape<ByteString, ByteString, ByteString, ByteString> shape() {
            return shape;
        }

        @Override
        public GraphStageLogic createLogic(Attributes inheritedAttributes) {
            return new TimerGraphStageLogic(shape) {
                private boolean counted;
                private RequestClock clock;
                /** The deadline the timer is set for, so that a chunk that changes nothing does not reschedule it. */
                private java.util.OptionalLong armed = java.util.OptionalLong.empty();

                {
                    setHandler(fromServer, new AbstractInHandler() {
                        @Override
                        public void onPush() {
                            ByteString bytes = grab(fromServer);
                            if (clock.wantsServerBytes()) {
                                clock.onServerBytes(bytes.toArray(), System.nanoTime());
                                rearm();
                            }
                            push(toClient, bytes);
                        }

                        @Override
                        public void onUpstreamFinish() {
                            complete(toClient);
                        }

                        @Override
                        public void onUpstreamFailure(Throwable ex) {
                            fail(toClient, ex);
                        }
                    });
                    setHandler(toClient, new AbstractOutHandler() {
                        @Override
                        public void onPull() {
                            pull(fromServer);
                        }

                        @Override
                        public void onDownstreamFinish(Throwable cause) {
                            cancel(fromServer, cause);
                        }
                    });
                    setHandler(fromClient, new AbstractInHandler() {
                        @Override
                        public void onPush() {
                            ByteString bytes = grab(fromClient);
                            if (!clock.untimed()) {
                                clock.onClientBytes(bytes.toArray(), System.nanoTime());
                                rearm();
                            }
                            push(toServer, bytes);
                        }

                        @Override
                        public void onUpstreamFinish() {
                            complete(toServer);
                        }

                        @Override
                        public void onUpstreamFailure(Throwable ex) {
                            fail(toServer, ex);
                        }
                    });
                    setHandler(toServer, new AbstractOutHandler() {
                        @Override
                        public void onPull() {
                            pull(fromClient);
                        }

                        @Override
                        public void onDownstreamFinish(Throwable cause) {
                            cancel(fromClient, cause);
                        }
                    });
                }

                @Override
                public void preStart() {
                    if (!admit(client)) {
                        log.debug("refused a connection from {}: it holds {} already", client, settings.maxPerClient());
                        onClosed.accept(Closed.TOO_MANY_PER_CLIENT);
                        // the server never sees this connection; the client reads why, then it is closed
                        complete(toServer);
                        cancel(fromServer);
                        emit(toClient, refusal(settings.maxPerClient()), () -> completeStage());
                        return;
                    }
                    counted = true;
                    clock = new RequestClock(settings.headerTimeout(), settings.bodyTimeout(), System.nanoTime());
                    rearm();
                }

                @Override
                public void postStop() {
                    if (counted) {
                        release(client);
                    }
                }

                @Override
                public void onTimer(Object key) {
                    Optional<RequestClock.Overdue> overdue = clock.overdue(System.nanoTime());
                    if (overdue.isEmpty()) {
                        armed = java.util.OptionalLong.empty();
                        rearm();
                        return;
                    }
                    RequestClock.Phase phase = overdue.get().phase();
                    log.debug("closing the connection from {}: {} did not arrive within {}", client, overdue.get().what(),
                            phase == RequestClock.Phase.HEADERS ? settings.headerTimeout() : settings.bodyTimeout());
                    onClosed.accept(phase == RequestClock.Phase.HEADERS ? Closed.HEADER_TIMEOUT : Closed.BODY_TIMEOUT);
                    // a failure, not an end: the server must not take the half request for a whole (malformed) one
                    failStage(new SlowClientException(client + ": " + overdue.get().what() + " did not arrive in time"));
                }

                private void rearm() {
                    java.util.OptionalLong deadline = clock.deadline();
                    if (deadline.equals(armed)) {
                        return;
                    }
                    armed = deadline;
                    cancelTimer(TIMER);
                    deadline.ifPresent(d -> scheduleOnce(TIMER, java.time.Duration.ofNanos(Math.max(0, d - System.nanoTime()))));
                }
            };
        }
    }
}
