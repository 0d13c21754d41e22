package io.agentexec.gateway.http;

import java.util.Collections;
import java.util.Set;
import java.util.WeakHashMap;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.http.impl.engine.http2.TelemetrySpi;
import org.apache.pekko.http.scaladsl.model.HttpRequest;
import org.apache.pekko.http.scaladsl.model.HttpResponse;
import org.apache.pekko.stream.scaladsl.BidiFlow;
import org.apache.pekko.stream.scaladsl.Flow;
import org.apache.pekko.stream.scaladsl.Tcp;

/**
 * Puts the {@link ConnectionGuard} on every connection an actor system's HTTP server accepts.
 * pekko-http's server (with HTTP/2 enabled, as the gateway runs it for gRPC on h2c) offers one
 * hook below HTTP: its telemetry SPI ({@code pekko.http.http2-telemetry-class}, an
 * {@code @InternalStableApi}), which may replace each accepted TCP connection's byte flow. Named in
 * this module's reference.conf; pekko makes one per actor system, and falls back to none without a
 * word when it cannot, so {@link io.agentexec.gateway.Gateway} checks {@link #installedIn} after binding.
 */
public final class GuardTelemetry implements TelemetrySpi {
    private static final Set<ActorSystem> INSTALLED = Collections.synchronizedSet(Collections.newSetFromMap(new WeakHashMap<>()));

    private final ActorSystem system;

    /** Called by pekko-http (reflection) with the actor system whose HTTP server starts. */
    public GuardTelemetry(ActorSystem system) {
        this.system = system;
        INSTALLED.add(system);
    }

    /** Whether pekko-http of this actor system took this class as its telemetry (and so the guard runs). */
    public static boolean installedIn(ActorSystem system) {
        return INSTALLED.contains(system);
    }

    @Override
    public Flow<Tcp.IncomingConnection, Tcp.IncomingConnection, NotUsed> serverBinding() {
        return org.apache.pekko.stream.javadsl.Flow.<Tcp.IncomingConnection>create()
                .map(connection -> ConnectionGuard.of(system).map(guard -> guard.wrap(connection)).orElse(connection))
                .asScala();
    }

    @Override
    public BidiFlow<HttpRequest, HttpRequest, HttpResponse, HttpResponse, NotUsed> client() {
        return BidiFlow.identity();
    }

    @Override
    public BidiFlow<HttpResponse, HttpResponse, HttpRequest, HttpRequest, NotUsed> serverConnection() {
        return BidiFlow.identity();
    }
}
