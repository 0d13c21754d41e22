package io.agentexec.gateway.service;

import io.agentexec.cluster.executors.SeedExecutors;
import io.agentexec.cluster.port.ExecutionPort;
import io.agentexec.gateway.GatewaySettings;
import io.agentexec.gateway.executions.ExecutionRegistry;
import io.agentexec.gateway.metrics.Metrics;
import io.agentexec.gateway.spi.ConversationService;
import io.agentexec.gateway.tenant.TenantGuard;
import io.agentexec.sandbox.language.Language;
import java.util.Collection;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * The gateway's one application service: what a request may do, whichever transport it came by. HTTP and gRPC map
 * their wire format to calls here and the answers back to their wire format; everything between — admission (tenant
 * and rate), the request's rules, the registry, the execution port, metrics and the request log — happens here once.
 */
public final class GatewayService {
    /** Whether this node takes work, and why not. */
    public record Readiness(boolean ready, String detail) { }

    private final ExecutionPort port;
    private final TenantGuard guard;
    private final Metrics metrics;
    private final RequestRules rules;
    private final Draining draining;
    private final Executions executions;
    private final Sandboxes sandboxes;
    private final Conversations conversations;

    public GatewayService(GatewaySettings settings, ExecutionPort port, ConversationService conversations, TenantGuard guard,
                          ExecutionRegistry registry, Metrics metrics, RequestRules rules, AtomicBoolean draining,
                          SeedExecutors executors) {
        this.port = port;
        this.guard = guard;
        this.metrics = metrics;
        this.rules = rules;
        this.draining = new Draining(draining);
        this.executions = new Executions(port, registry, rules, metrics, this.draining, settings.askTimeout(),
                executors);
        this.sandboxes = new Sandboxes(port, rules, this.draining, settings.maxFileReadBytes(), executors);
        this.conversations = new Conversations(conversations, this.draining);
    }

    /** Authenticates the request's tenant from its Authorization value and takes a rate token: 401 or 429 if not. */
    public Requester admit(String requestId, Optional<String> authorization) {
        return new Requester(requestId, guard.admit(authorization));
    }

    public Executions executions() {
        return executions;
    }

    public Sandboxes sandboxes() {
        return sandboxes;
    }

    public Conversations conversations() {
        return conversations;
    }

    public Collection<Language> languages() {
        return rules.languages().all();
    }

    /** {@code cluster} or {@code engine}. */
    public String backend() {
        return port.kind();
    }

    /** Whether output reaches followers while the code runs (rather than only in the result). */
    public boolean streamsOutput() {
        return port.streamsOutput();
    }

    /** Ready when the machinery behind the port is and this node is not shutting down. */
    public CompletionStage<Readiness> readiness() {
        return port.status().thenApply(s -> {
            boolean shuttingDown = draining.draining();
            return new Readiness(s.ready() && !shuttingDown, shuttingDown ? "shutting down" : s.detail());
        });
    }

    /** The Prometheus text of this node's metrics and the port's gauges. */
    public CompletionStage<String> metricsText() {
        return port.status().thenApply(metrics::render);
    }

    /** A request is being answered (the in-flight gauge); {@link #requestEnded} when it is. */
    public void requestStarted() {
        metrics.inFlightRequests().incrementAndGet();
    }

    /** One answered request; {@code route} is the route's template or the RPC's name, never a raw path. */
    public void requestEnded(String protocol, String method, String route, int status, long nanos) {
        metrics.inFlightRequests().decrementAndGet();
        metrics.recordRequest(protocol, method, route, status, nanos);
    }
}
