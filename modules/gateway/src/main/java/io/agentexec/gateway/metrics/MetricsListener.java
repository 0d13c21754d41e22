package io.agentexec.gateway.metrics;

import com.typesafe.config.Config;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.japi.function.Function;

/**
 * {@code agentexec.gateway.metrics}: where {@code /metrics} is served. Without a port it is a route of the API
 * port, as for a single node; with one it is served on its own listener only, and the API port answers 404 for it,
 * so that the public API (behind an ingress) does not expose the metrics and a NetworkPolicy can open the one port
 * to the monitoring system alone.
 */
public record MetricsListener(String host, int port) {
    static final String PATH = "/metrics";

    /** The listener configured, or none (port -1: /metrics stays on the API port). */
    public static Optional<MetricsListener> fromConfig(Config root) {
        Config c = root.getConfig("agentexec.gateway.metrics");
        int port = c.getInt("port");
        if (port < -1 || port > 65535) {
            throw new IllegalArgumentException("agentexec.gateway.metrics.port must be -1 (on the API port) or a port, got " + port);
        }
        return port == -1 ? Optional.empty() : Optional.of(new MetricsListener(c.getString("host"), port));
    }

    private static boolean isMetrics(HttpRequest request) {
        return request.getUri().path().equals(PATH);
    }

    private static CompletionStage<HttpResponse> notFound() {
        return CompletableFuture.completedFuture(HttpResponse.create().withStatus(404));
    }

    /** The API's handler for the metrics listener: /metrics only. */
    public Function<HttpRequest, CompletionStage<HttpResponse>> only(Function<HttpRequest, CompletionStage<HttpResponse>> api) {
        return request -> isMetrics(request) ? api.apply(request) : notFound();
    }

    /** The API's handler for the API port: everything but /metrics. */
    public Function<HttpRequest, CompletionStage<HttpResponse>> without(Function<HttpRequest, CompletionStage<HttpResponse>> api) {
        return request -> isMetrics(request) ? notFound() : api.apply(request);
    }
}
