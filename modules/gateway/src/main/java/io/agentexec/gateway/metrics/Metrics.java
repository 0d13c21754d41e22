package io.agentexec.gateway.metrics;

import io.agentexec.cluster.port.PortStatus;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.DoubleAdder;
import java.util.concurrent.atomic.LongAdder;

/**
 * The node's Prometheus metrics, rendered in the text exposition format (version 0.0.4): the gateway's, and the
 * scaling signals of this node's own worker, labelled {@code node} by its stable name.
 */
public final class Metrics {
    /** Seconds; spans a warm-pool fork (ms) to a long run (minutes). */
    private static final double[] LATENCY_BUCKETS = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

    private final Map<List<String>, Histogram> requestLatency = new ConcurrentHashMap<>();
    private final Map<String, Histogram> executionLatency = new ConcurrentHashMap<>();
    private final Map<String, LongAdder> executionsByVerdict = new ConcurrentHashMap<>();
    private final Map<String, LongAdder> refusals = new ConcurrentHashMap<>();
    private final Map<String, LongAdder> connectionsClosed = new ConcurrentHashMap<>();
    private final AtomicLong inFlightRequests = new AtomicLong();
    /** By source, profile, verdict and cached: bounded labels (never the tenant's executor names). */
    private final Map<List<String>, LongAdder> executorRuns = new ConcurrentHashMap<>();
    private final String nodeName;

    /** @param nodeName this node's stable name ({@code agentexec.cluster.node-name}), the worker gauges' label */
    public Metrics(String nodeName) {
        this.nodeName = nodeName;
    }

    /** One HTTP or gRPC request; {@code route} is the route template, never the raw path (bounded labels). */
    public void recordRequest(String protocol, String method, String route, int status, long nanos) {
        requestLatency.computeIfAbsent(List.of(protocol, method, route, Integer.toString(status)), k -> new Histogram())
                .observe(nanos / 1e9);
    }

    public void recordExecution(String verdict, long wallTimeMs) {
        executionsByVerdict.computeIfAbsent(verdict, k -> new LongAdder()).increment();
        executionLatency.computeIfAbsent(verdict, k -> new Histogram()).observe(wallTimeMs / 1000.0);
    }

    /**
     * A run counted in the seed's execution_stats (GET /v1/stats): HTTP's, gRPC's and the code the node's chats ran,
     * by where it came from ({@code source}), its profile, its verdict and whether the cache answered it.
     */
    public void recordExecutorRun(String source, String profile, String verdict, boolean cached) {
        executorRuns.computeIfAbsent(List.of(source, profile, verdict, Boolean.toString(cached)), k -> new LongAdder())
                .increment();
    }

    /** An execution refused or ended without a verdict: overloaded, rate_limited, quota, cancelled, unavailable. */
    public void recordRefusal(String reason) {
        refusals.computeIfAbsent(reason, k -> new LongAdder()).increment();
    }

    /** A connection the gateway closed itself: too many from its client, or a request not sent in time. */
    public void recordConnectionClosed(String reason) {
        connectionsClosed.computeIfAbsent(reason, k -> new LongAdder()).increment();
    }

    public AtomicLong inFlightRequests() {
        return inFlightRequests;
    }

    public String render(PortStatus status) {
        StringBuilder out = new StringBuilder(4096);
        out.append("# HELP agentexec_http_request_duration_seconds Time to answer a request, by protocol, method, route and status.\n");
        out.append("# TYPE agentexec_http_request_duration_seconds histogram\n");
        new TreeMap<>(requestLatency.entrySet().stream().collect(java.util.stream.Collectors.toMap(
                e -> String.join("\u0000", e.getKey()), Map.Entry::getValue))).forEach((k, h) -> {
            String[] p = k.split("\u0000");
            h.render(out, "agentexec_http_request_duration_seconds",
                    "protocol=\"" + p[0] + "\",method=\"" + p[1] + "\",route=\"" + escape(p[2]) + "\",status=\"" + p[3] + "\"");
        });
        out.append("# HELP agentexec_execution_duration_seconds Wall time of executions' code, by verdict.\n");
        out.append("# TYPE agentexec_execution_duration_seconds histogram\n");
        new TreeMap<>(executionLatency).forEach((v, h) -> h.render(out, "agentexec_execution_duration_seconds", "verdict=\"" + v + "\""));
        out.append("# HELP agentexec_executions_total Executions that ended with a verdict.\n");
        out.append("# TYPE agentexec_executions_total counter\n");
        new TreeMap<>(executionsByVerdict).forEach((v, c) ->
                out.append("agentexec_executions_total{verdict=\"").append(v).append("\"} ").append(c.sum()).append('\n'));
        out.append("# HELP agentexec_executions_refused_total Executions that got no verdict, by reason.\n");
        out.append("# TYPE agentexec_executions_refused_total counter\n");
        new TreeMap<>(refusals).forEach((v, c) ->
                out.append("agentexec_executions_refused_total{reason=\"").append(v).append("\"} ").append(c.sum()).append('\n'));
        out.append("# HELP agentexec_executor_runs_total Runs counted in the tenants' statistics (chats' included), by "
                + "source, profile, verdict and cached.\n");
        out.append("# TYPE agentexec_executor_runs_total counter\n");
        new TreeMap<>(executorRuns.entrySet().stream().collect(java.util.stream.Collectors.toMap(
                e -> String.join("\u0000", e.getKey()), Map.Entry::getValue))).forEach((k, c) -> {
            String[] p = k.split("\u0000");
            out.append("agentexec_executor_runs_total{source=\"").append(escape(p[0])).append("\",profile=\"")
                    .append(escape(p[1])).append("\",verdict=\"").append(escape(p[2])).append("\",cached=\"")
                    .append(p[3]).append("\"} ").append(c.sum()).append('\n');
        });
        out.append("# HELP agentexec_connections_closed_total Connections the gateway closed, by reason.\n");
        out.append("# TYPE agentexec_connections_closed_total counter\n");
        new TreeMap<>(connectionsClosed).forEach((v, c) ->
                out.append("agentexec_connections_closed_total{reason=\"").append(v).append("\"} ").append(c.sum()).append('\n'));
        out.append("# HELP agentexec_http_requests_in_flight Requests being answered now.\n");
        out.append("# TYPE agentexec_http_requests_in_flight gauge\n");
        out.append("agentexec_http_requests_in_flight ").append(inFlightRequests.get()).append('\n');
        // Only this node's own worker, labelled by the node's stable name: summed over every node's scrape, each
        // worker counts once (capacity used = sum(running + queued) / sum(slots); README, "Scaling signals").
        status.ownWorker().ifPresent(w -> {
            Map<String, Integer> slots = Map.of(nodeName, w.slots());
            gauge(out, "agentexec_worker_slots", "Execution slots of this node's worker.", "node", slots);
            gauge(out, "agentexec_worker_running", "Executions holding a slot on this node's worker.", "node",
                    Map.of(nodeName, w.running()));
            gauge(out, "agentexec_worker_queued", "Executions waiting for a slot on this node's worker.", "node",
                    Map.of(nodeName, w.queued()));
        });
        gauge(out, "agentexec_warm_pool_size", "Started containers kept ready, per image.", "image", status.warmPoolByImage());
        out.append("# HELP agentexec_live_sandboxes Sandboxes alive now.\n");
        out.append("# TYPE agentexec_live_sandboxes gauge\n");
        out.append("agentexec_live_sandboxes ").append(status.liveSandboxes()).append('\n');
        out.append("# HELP agentexec_ready Whether the node takes work (1) or not (0).\n");
        out.append("# TYPE agentexec_ready gauge\n");
        out.append("agentexec_ready ").append(status.ready() ? 1 : 0).append('\n');
        return out.toString();
    }

    private static void gauge(StringBuilder out, String name, String help, String label, Map<String, Integer> values) {
        out.append("# HELP ").append(name).append(' ').append(help).append('\n');
        out.append("# TYPE ").append(name).append(" gauge\n");
        new TreeMap<>(values).forEach((k, v) ->
                out.append(name).append('{').append(label).append("=\"").append(escape(k)).append("\"} ").append(v).append('\n'));
    }

    private static String escape(String value) {
        return value.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n");
    }

    private static final class Histogram {
        private final LongAdder[] counts = new LongAdder[LATENCY_BUCKETS.length];
        private final LongAdder count = new LongAdder();
        private final DoubleAdder sum = new DoubleAdder();

        Histogram() {
            for (int i = 0; i < counts.length; i++) {
                counts[i] = new LongAdder();
            }
        }

        void observe(double seconds) {
            for (int i = 0; i < LATENCY_BUCKETS.length; i++) {
                if (seconds <= LATENCY_BUCKETS[i]) {
                    counts[i].increment();
                }
            }
            count.increment();
            sum.add(seconds);
        }

        void render(StringBuilder out, String name, String labels) {
            for (int i = 0; i < LATENCY_BUCKETS.length; i++) {
                out.append(name).append("_bucket{").append(labels).append(",le=\"")
                        .append(String.format(Locale.ROOT, "%s", LATENCY_BUCKETS[i])).append("\"} ").append(counts[i].sum()).append('\n');
            }
            out.append(name).append("_bucket{").append(labels).append(",le=\"+Inf\"} ").append(count.sum()).append('\n');
            out.append(name).append("_sum{").append(labels).append("} ").append(sum.sum()).append('\n');
            out.append(name).append("_count{").append(labels).append("} ").append(count.sum()).append('\n');
        }
    }
}
