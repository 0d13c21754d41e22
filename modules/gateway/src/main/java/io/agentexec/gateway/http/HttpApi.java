package io.agentexec.gateway.http;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.agentexec.cluster.api.ExecutionReply;
import io.agentexec.cluster.port.ExecutionPort;
import io.agentexec.cluster.port.RunHandle;
import io.agentexec.cluster.port.SandboxInfo;
import io.agentexec.gateway.GatewaySettings;
import io.agentexec.gateway.executions.ExecutionEvent;
import io.agentexec.gateway.executions.ExecutionRegistry;
import io.agentexec.gateway.executions.TrackedExecution;
import io.agentexec.gateway.logging.RequestLog;
import io.agentexec.gateway.metrics.Metrics;
import io.agentexec.gateway.spi.ConversationService;
import io.agentexec.gateway.spi.TenantId;
import io.agentexec.gateway.tenant.Tenant;
import io.agentexec.gateway.tenant.TenantGuard;
import io.agentexec.sandbox.language.Language;
import io.agentexec.sandbox.language.LanguageTable;
import io.agentexec.sandbox.model.InvalidRequestException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Pattern;
import org.apache.pekko.NotUsed;
import org.apache.pekko.http.javadsl.model.ContentType;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpEntity;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.MediaTypes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.scaladsl.model.EntityStreamSizeException;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.BoundedSourceQueue;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP/1.1 JSON API. A route table (also checked against openapi.yaml by a test) and one
 * handler per route; every refusal is a JSON error, never a stack trace. Translates and checks
 * tenants only: the backends behind the SPI do the work.
 */
public final class HttpApi {
    private static final Logger log = LoggerFactory.getLogger(HttpApi.class);
    private static final Pattern REQUEST_ID = Pattern.compile("[A-Za-z0-9._-]{1,64}");
    private static final ContentType EVENT_STREAM = ContentTypes.create(MediaTypes.TEXT_EVENT_STREAM);
    /** How long a client should wait after an overload before trying again. */
    private static final Duration OVERLOAD_RETRY = Duration.ofSeconds(1);
    private static final int SSE_BUFFER = 4096;

    enum Body { NONE, JSON, BYTES }

    /** One route: method, path template ({name} is a segment; a trailing {path} takes the rest), auth, body. */
    public record Route(String method, String template, boolean authenticated, Body body, Handler handler) { }

    @FunctionalInterface
    interface Handler {
        CompletionStage<HttpResponse> handle(Call call) throws Exception;
    }

    /** A request matched to a route: its id, tenant, path parameters and body. */
    record Call(HttpRequest request, String requestId, Optional<Tenant> tenant, Map<String, String> params,
                byte[] body, JsonNode json) {
        Tenant requireTenant() {
            return tenant.orElseThrow();
        }

        Map<String, String> logIds() {
            Map<String, String> ids = new LinkedHashMap<>();
            ids.put("requestId", requestId);
            tenant.ifPresent(t -> ids.put("tenant", t.id().value()));
            return ids;
        }
    }

    private final GatewaySettings settings;
    private final ExecutionPort port;
    private final ConversationService conversations;
    private final TenantGuard guard;
    private final ExecutionRegistry registry;
    private final Metrics metrics;
    private final ExecutionSpecParser parser;
    private final LanguageTable languages;
    private final Materializer materializer;
    private final AtomicBoolean draining;
    private final List<Route> routes;
    private final byte[] openApi;

    public HttpApi(GatewaySettings settings, ExecutionPort port, ConversationService conversations, TenantGuard guard,
                   ExecutionRegistry registry, Metrics metrics, ExecutionSpecParser parser, LanguageTable languages,
                   Materializer materializer, AtomicBoolean draining) {
        this.settings = settings;
        this.port = port;
        this.conversations = conversations;
        this.guard = guard;
        this.registry = registry;
        this.metrics = metrics;
        this.parser = parser;
        this.languages = languages;
        this.materializer = materializer;
        this.draining = draining;
        this.openApi = readOpenApi();
        this.routes = List.of(
                new Route("POST", "/v1/executions", true, Body.JSON, this::postExecution),
                new Route("GET", "/v1/executions/{id}", true, Body.NONE, this::getExecution),
                new Route("DELETE", "/v1/executions/{id}", true, Body.NONE, this::cancelExecution),
                new Route("GET", "/v1/executions/{id}/events", true, Body.NONE, this::executionEvents),
                new Route("POST", "/v1/sandboxes", true, Body.JSON, this::createSandbox),
                new Route("GET", "/v1/sandboxes/{id}", true, Body.NONE, this::getSandbox),
                new Route("DELETE", "/v1/sandboxes/{id}", true, Body.NONE, this::deleteSandbox),
                new Route("POST", "/v1/sandboxes/{id}/executions", true, Body.JSON, this::postExecution),
                new Route("PUT", "/v1/sandboxes/{id}/files/{path}", true, Body.BYTES, this::putFile),
                new Route("GET", "/v1/sandboxes/{id}/files/{path}", true, Body.NONE, this::getFile),
                new Route("POST", "/v1/conversations", true, Body.JSON, this::startConversation),
                new Route("GET", "/v1/conversations/{id}", true, Body.NONE, this::getConversation),
                new Route("POST", "/v1/conversations/{id}/input", true, Body.JSON, this::humanInput),
                new Route("GET", "/v1/conversations/{id}/events", true, Body.NONE, this::conversationEvents),
                new Route("GET", "/v1/languages", true, Body.NONE, this::languages),
                new Route("GET", "/healthz", false, Body.NONE, this::healthz),
                new Route("GET", "/readyz", false, Body.NONE, this::readyz),
                new Route("GET", "/metrics", false, Body.NONE, this::metricsWithToken),
                new Route("GET", "/openapi.yaml", false, Body.NONE, this::openApi));
    }

    public List<Route> routes() {
        return routes;
    }

    // ---- dispatch

    public CompletionStage<HttpResponse> handle(HttpRequest request) {
        long started = System.nanoTime();
        String requestId = request.getHeader("X-Request-Id").map(HttpHeader::value)
                .filter(v -> REQUEST_ID.matcher(v).matches()).orElseGet(() -> "req-" + UUID.randomUUID());
        List<String> segments = new ArrayList<>();
        request.getUri().pathSegments().forEach(segments::add);
        String method = request.method().value();
        metrics.inFlightRequests().incrementAndGet();
        String[] routeName = {"unmatched"};
        CompletionStage<HttpResponse> response;
        try {
            response = dispatch(request, requestId, segments, method, routeName);
        } catch (Exception e) {
            response = CompletableFuture.failedFuture(e);
        }
        return response.exceptionally(e -> errorResponse(unwrap(e), requestId, routeName[0]))
                .thenApply(r -> {
                    metrics.inFlightRequests().decrementAndGet();
                    metrics.recordRequest("http", method, routeName[0], r.status().intValue(), System.nanoTime() - started);
                    return r.addHeader(RawHeader.create("X-Request-Id", requestId));
                });
    }

    private CompletionStage<HttpResponse> dispatch(HttpRequest request, String requestId, List<String> segments,
                                                   String method, String[] routeName) throws Exception {
        List<Route> pathMatches = new ArrayList<>();
        Map<String, String> params = Map.of();
        for (Route route : routes) {
            Optional<Map<String, String>> m = match(route.template(), segments);
            if (m.isPresent()) {
                pathMatches.add(route);
                if (route.method().equals(method)) {
                    params = m.get();
                }
            }
        }
        if (pathMatches.isEmpty()) {
            throw ApiException.notFound("no such endpoint: " + ExecutionSpecParser.abbreviate(request.getUri().path()));
        }
        Optional<Route> chosen = pathMatches.stream().filter(r -> r.method().equals(method)).findFirst();
        if (chosen.isEmpty()) {
            routeName[0] = pathMatches.get(0).template();
            throw ApiException.methodNotAllowed(method, pathMatches.stream().map(Route::method).distinct().toList());
        }
        Route route = chosen.get();
        routeName[0] = route.template();
        Optional<Tenant> tenant = route.authenticated()
                ? Optional.of(guard.admit(request.getHeader("Authorization").map(HttpHeader::value)))
                : Optional.empty();
        Map<String, String> boundParams = params;
        if (route.body() == Body.NONE) {
            return route.handler().handle(new Call(request, requestId, tenant, boundParams, new byte[0], Json.MAPPER.nullNode()));
        }
        HttpEntity entity = request.entity();
        if (route.body() == Body.JSON && !entity.getContentType().mediaType().equals(MediaTypes.APPLICATION_JSON)) {
            throw new ApiException(415, "unsupported_media_type", "the body must be application/json; got "
                    + entity.getContentType());
        }
        if (entity.getContentLengthOption().isPresent() && entity.getContentLengthOption().getAsLong() > settings.maxBodyBytes()) {
            throw tooLarge();
        }
        Duration bodyTimeout = settings.connections().bodyTimeout();
        return entity.withSizeLimit(settings.maxBodyBytes()).toStrict(bodyTimeout.toMillis(), materializer)
                .exceptionally(error -> {
                    if (unwrap(error) instanceof java.util.concurrent.TimeoutException) {
                        // the client, not the cluster, is slow: its connection is closed by the guard too
                        throw new ApiException(408, "request_timeout", "the body did not arrive within " + bodyTimeout
                                + " (agentexec.gateway.connections.body-timeout)");
                    }
                    throw error instanceof CompletionException c ? c : new CompletionException(error);
                })
                .thenCompose(strict -> {
                    byte[] bytes = strict.getData().toArray();
                    JsonNode json = Json.MAPPER.nullNode();
                    if (route.body() == Body.JSON) {
                        try {
                            json = Json.MAPPER.readTree(bytes);
                        } catch (IOException e) {
                            throw ApiException.badRequest("malformed JSON: " + firstLine(e));
                        }
                        if (json == null || json.isMissingNode()) {
                            throw ApiException.badRequest("the body must be a JSON object; it is empty");
                        }
                    }
                    try {
                        return route.handler().handle(new Call(request, requestId, tenant, boundParams, bytes, json));
                    } catch (Exception e) {
                        throw new CompletionException(e);
                    }
                });
    }

    private ApiException tooLarge() {
        return new ApiException(413, "body_too_large", "the body is larger than " + settings.maxBodyBytes() + " bytes");
    }

    static Optional<Map<String, String>> match(String template, List<String> segments) {
        String[] parts = template.substring(1).split("/");
        Map<String, String> params = new LinkedHashMap<>();
        for (int i = 0; i < parts.length; i++) {
            boolean last = i == parts.length - 1;
            if (last && parts[i].equals("{path}")) {
                if (segments.size() <= i) {
                    return Optional.empty();
                }
                params.put("path", String.join("/", segments.subList(i, segments.size())));
                return Optional.of(params);
            }
            if (i >= segments.size()) {
                return Optional.empty();
            }
            if (parts[i].startsWith("{")) {
                if (segments.get(i).isEmpty()) {
                    return Optional.empty();
                }
                params.put(parts[i].substring(1, parts[i].length() - 1), segments.get(i));
            } else if (!parts[i].equals(segments.get(i))) {
                return Optional.empty();
            }
        }
        return segments.size() == parts.length ? Optional.of(params) : Optional.empty();
    }

    private HttpResponse errorResponse(Throwable e, String requestId, String route) {
        ApiException api;
        if (e instanceof ApiException a) {
            api = a;
        } else if (e instanceof io.agentexec.cluster.port.SandboxFileError file) {
            api = ApiException.of(file);
        } else if (e instanceof io.agentexec.cluster.port.QuotaExceededException quota) {
            api = ApiException.of(quota);
        } else if (e instanceof EntityStreamSizeException) {
            api = tooLarge();
        } else if (e instanceof InvalidRequestException invalid) {
            api = ApiException.badRequest(invalid.getMessage());
        } else if (e instanceof UnsupportedOperationException unsupported) {
            api = new ApiException(501, "not_implemented", unsupported.getMessage());
        } else if (e instanceof java.util.concurrent.TimeoutException) {
            // an ask to the cluster (an entity or a node) that got no answer: try again, maybe elsewhere
            api = ApiException.unavailable("unavailable", "the cluster did not answer in time", OVERLOAD_RETRY);
        } else {
            log.error("request {} on {} failed", requestId, route, e);
            api = new ApiException(500, "internal", "internal error; quote request id " + requestId);
        }
        HttpResponse response = HttpResponse.create().withStatus(api.status())
                .withEntity(ContentTypes.APPLICATION_JSON, Json.bytes(Json.error(api.code(), api.getMessage(), requestId)));
        if (api.retryAfter().isPresent()) {
            long seconds = Math.max(1, (api.retryAfter().get().toMillis() + 999) / 1000);
            response = response.addHeader(RawHeader.create("Retry-After", Long.toString(seconds)));
        }
        if (!api.allow().isEmpty()) {
            response = response.addHeader(RawHeader.create("Allow", String.join(", ", api.allow())));
        }
        if (api.status() == 401) {
            response = response.addHeader(RawHeader.create("WWW-Authenticate", "Bearer realm=\"agentexec\""));
        }
        return response;
    }

    private static Throwable unwrap(Throwable e) {
        while ((e instanceof CompletionException || e instanceof java.util.concurrent.ExecutionException) && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    private static String firstLine(IOException e) {
        String m = e instanceof JacksonException j ? j.getOriginalMessage() : e.getMessage();
        return m == null ? e.getClass().getSimpleName() : m.lines().findFirst().orElse(m);
    }

    private static HttpResponse json(int status, Object body) {
        return HttpResponse.create().withStatus(status).withEntity(ContentTypes.APPLICATION_JSON, Json.bytes(body));
    }

    private void refuseWhenDraining() {
        if (draining.get()) {
            throw ApiException.unavailable("shutting_down", "this node is shutting down; try another", OVERLOAD_RETRY);
        }
    }

    // ---- executions

    private CompletionStage<HttpResponse> postExecution(Call call) {
        refuseWhenDraining();
        Tenant tenant = call.requireTenant();
        ExecutionSpecParser.ExecutionSpec spec = parser.execution(call.json(), tenant.policy(),
                Optional.ofNullable(call.params().get("id")));
        boolean async = call.request().getUri().query().get("async").map(v -> v.equals("true") || v.equals("1")).orElse(false);
        TrackedExecution tracked = registry.register(tenant.id(), spec.sandboxId());
        Map<String, String> ids = call.logIds();
        ids.put("executionId", tracked.id());
        // Sync runs are followable by id too (GET .../events), so output always goes to the tracker.
        RunHandle run = port.start(tenant.caller(), tracked.id(), spec.sandboxId(), spec.request(), tracked);
        tracked.attach(run);
        run.outcome().thenAccept(outcome -> {
            tracked.complete(outcome);
            recordOutcome(outcome, ids);
        });
        RequestLog.info(log, ids, "execution accepted ({} block(s), sandbox {}, async {})",
                spec.request().blocks().size(), spec.sandboxId().orElse("none"), async);
        CompletableFuture<Void> admittedOrDone = run.admitted().toCompletableFuture()
                .applyToEither(run.outcome().thenApply(o -> (Void) null), v -> v);
        // A short synchronous run is answered in one plain response; only a run still going after one
        // heartbeat interval gets the streamed body that notices a client which went away.
        // An async request waits only the admission grace, long enough for a fast refusal (overload).
        Duration grace = async ? settings.admissionGrace() : settings.heartbeatInterval();
        CompletableFuture<Void> decided = admittedOrDone.thenCompose(v ->
                run.outcome().toCompletableFuture().thenApply(o -> (Void) null)
                        .completeOnTimeout(null, grace.toMillis(), TimeUnit.MILLISECONDS));
        if (async) {
            // its id is answered once every gateway node finds it, so a GET on another node never says 404
            decided = decided.thenCompose(v -> run.visible().toCompletableFuture()
                    .applyToEither(run.outcome().thenApply(o -> (Void) null), x -> x));
        }
        return decided.thenApply(ignored -> {
            Optional<ExecutionReply> early = run.outcome().toCompletableFuture().isDone()
                    ? Optional.of(run.outcome().toCompletableFuture().join()) : Optional.empty();
            if (early.isPresent() && !Json.hasResult(early.get())) {
                throw Json.asError(early.get(), OVERLOAD_RETRY);
            }
            if (async) {
                ObjectNode body = Json.MAPPER.createObjectNode();
                body.put("id", tracked.id());
                body.put("status", early.isPresent() ? "completed" : "running");
                body.put("url", "/v1/executions/" + tracked.id());
                body.put("eventsUrl", "/v1/executions/" + tracked.id() + "/events");
                return json(202, body).addHeader(RawHeader.create("Location", "/v1/executions/" + tracked.id()));
            }
            if (early.isPresent()) {
                return json(200, completedBody((ExecutionReply.Completed) early.get(), tracked.id()));
            }
            return HttpResponse.create().withStatus(200)
                    .withEntity(HttpEntities.createChunked(ContentTypes.APPLICATION_JSON, resultBody(run, tracked)));
        });
    }

    /**
     * The body of a synchronous execution, committed once the run is admitted: spaces while it
     * runs (JSON allows leading whitespace) so a client that went away is noticed, then the result.
     * If the stream ends before the run does, the client left: the run is cancelled.
     */
    private Source<ByteString, NotUsed> resultBody(RunHandle run, TrackedExecution tracked) {
        Source<ByteString, NotUsed> result = Source.completionStage(run.outcome().thenApply(outcome ->
                ByteString.fromArray(Json.bytes(Json.hasResult(outcome)
                        ? completedBody((ExecutionReply.Completed) outcome, tracked.id())
                        : errorBodyOf(outcome, tracked.id())))));
        Duration beat = settings.heartbeatInterval();
        Source<ByteString, NotUsed> heartbeat = Source.tick(beat, beat, ByteString.fromString(" "))
                .mapMaterializedValue(c -> NotUsed.getInstance());
        return heartbeat.merge(result, true)
                .watchTermination((mat, done) -> {
                    done.whenComplete((d, error) -> {
                        if (!run.outcome().toCompletableFuture().isDone()) {
                            run.cancel();
                        }
                    });
                    return mat;
                });
    }

    private static ObjectNode errorBodyOf(ExecutionReply outcome, String executionId) {
        ApiException e = Json.asError(outcome, OVERLOAD_RETRY);
        return Json.error(e.code(), e.getMessage(), executionId);
    }

    private static ObjectNode completedBody(ExecutionReply.Completed completed, String executionId) {
        ObjectNode body = Json.result(completed.result(), executionId);
        completed.note().ifPresent(note -> body.put("note", note));
        return body;
    }

    private void recordOutcome(ExecutionReply outcome, Map<String, String> ids) {
        if (Json.hasResult(outcome)) {
            ExecutionReply.Completed c = (ExecutionReply.Completed) outcome;
            metrics.recordExecution(c.result().verdict().name(), c.result().wallTimeMs());
            RequestLog.info(log, ids, "execution ended: {} exit {} in {} ms", c.result().verdict(), c.result().exitCode(),
                    c.result().wallTimeMs());
        } else {
            String reason = Json.refusal(outcome);
            metrics.recordRefusal(reason);
            RequestLog.info(log, ids, "execution ended without a verdict: {}", reason);
        }
    }

    /**
     * An execution this node took is read from its registry; any other from the backend's directory
     * (on the cluster: one-offs any gateway node took, also after that node is gone).
     */
    private CompletionStage<HttpResponse> getExecution(Call call) {
        Tenant tenant = call.requireTenant();
        String id = call.params().get("id");
        Optional<TrackedExecution> tracked = registry.find(tenant.id(), id);
        if (tracked.isPresent()) {
            return CompletableFuture.completedFuture(json(200, executionBody(id, Optional.of(tracked.get().startedAt()),
                    tracked.get().outcome(), call.requestId())));
        }
        return port.lookup(tenant.caller(), id).thenApply(found -> json(200, executionBody(id, ExecutionRegistry.startedAt(id),
                found.orElseThrow(() -> noExecution(id)).outcome(), call.requestId())));
    }

    private static ObjectNode executionBody(String id, Optional<java.time.Instant> startedAt,
                                            Optional<ExecutionReply> outcome, String requestId) {
        ObjectNode body = Json.MAPPER.createObjectNode();
        body.put("id", id);
        startedAt.ifPresent(t -> body.put("startedAt", t.toString()));
        if (outcome.isEmpty()) {
            body.put("status", "running");
        } else if (Json.hasResult(outcome.get())) {
            body.put("status", "completed");
            body.set("result", completedBody((ExecutionReply.Completed) outcome.get(), id));
        } else {
            ApiException e = Json.asError(outcome.get(), OVERLOAD_RETRY);
            body.put("status", outcome.get().cancelled() ? "cancelled" : "failed");
            body.set("error", Json.error(e.code(), e.getMessage(), requestId).get("error"));
        }
        return body;
    }

    private static ApiException noExecution(String id) {
        return ApiException.notFound("no execution " + ExecutionSpecParser.abbreviate(id));
    }

    private CompletionStage<HttpResponse> cancelExecution(Call call) {
        Tenant tenant = call.requireTenant();
        String id = call.params().get("id");
        Optional<TrackedExecution> found = registry.find(tenant.id(), id);
        if (found.isEmpty()) {
            // taken by another gateway node: the cluster stops it wherever it runs
            return port.cancel(tenant.caller(), id, settings.askTimeout()).thenApply(known -> json(200, executionBody(id,
                    ExecutionRegistry.startedAt(id), known.orElseThrow(() -> noExecution(id)).outcome(), call.requestId())));
        }
        TrackedExecution tracked = found.get();
        RunHandle run = tracked.handle().orElseThrow(() -> noExecution(tracked.id()));
        if (tracked.outcome().isEmpty() && !run.cancellable()) {
            throw new ApiException(409, "not_cancellable", "this execution runs in a sandbox or on a backend that "
                    + "cannot stop it; its timeout ends it");
        }
        run.cancel();
        return getExecution(call);
    }

    /**
     * The events of an execution this node took replay its kept output, then go live. Those of one
     * another node took start with the output from now on (the worker sends it here too), then the
     * outcome; one that already ended gives its outcome alone (its output is in the result).
     */
    private CompletionStage<HttpResponse> executionEvents(Call call) {
        Tenant tenant = call.requireTenant();
        String id = call.params().get("id");
        Optional<TrackedExecution> local = registry.find(tenant.id(), id);
        CompletionStage<TrackedExecution> source = local.isPresent()
                ? CompletableFuture.completedFuture(local.get())
                : port.lookup(tenant.caller(), id).thenApply(found -> {
                    TrackedExecution follower = registry.follower(tenant.id(), id);
                    Optional<ExecutionReply> outcome = found.orElseThrow(() -> noExecution(id)).outcome();
                    if (outcome.isPresent()) {
                        follower.complete(outcome.get());
                    } else {
                        port.follow(tenant.caller(), id, follower).thenAccept(follower::complete);
                    }
                    return follower;
                });
        return source.thenApply(tracked -> sse(sink -> tracked.follow(event -> {
            if (event instanceof ExecutionEvent.Output out) {
                ObjectNode data = Json.MAPPER.createObjectNode();
                data.put("stream", out.stream());
                data.put("text", out.text());
                sink.event(out.sequence(), "output", data);
            } else if (event instanceof ExecutionEvent.End end) {
                boolean result = Json.hasResult(end.outcome());
                ObjectNode data = result
                        ? completedBody((ExecutionReply.Completed) end.outcome(), tracked.id()) : errorBodyOf(end.outcome(), tracked.id());
                sink.event(end.sequence(), result ? "result" : "error", data);
                sink.end();
            }
        })));
    }

    // ---- Server-Sent Events

    interface SseSink {
        void event(long id, String type, JsonNode data);

        void end();
    }

    /** A text/event-stream response fed by {@code subscribe}; the subscription closes when the client leaves. */
    private HttpResponse sse(java.util.function.Function<SseSink, AutoCloseable> subscribe) {
        Pair<BoundedSourceQueue<ByteString>, Source<ByteString, NotUsed>> pair =
                Source.<ByteString>queue(SSE_BUFFER).preMaterialize(materializer);
        BoundedSourceQueue<ByteString> queue = pair.first();
        SseSink sink = new SseSink() {
            @Override
            public void event(long id, String type, JsonNode data) {
                queue.offer(ByteString.fromString("id: " + id + "\nevent: " + type + "\ndata: "
                        + new String(Json.bytes(data), StandardCharsets.UTF_8) + "\n\n"));
            }

            @Override
            public void end() {
                queue.complete();
            }
        };
        AutoCloseable subscription = subscribe.apply(sink);
        Source<ByteString, NotUsed> body = pair.second()
                .keepAlive(settings.sseKeepAlive(), () -> ByteString.fromString(": keep-alive\n\n"))
                .watchTermination((mat, done) -> {
                    done.whenComplete((d, e) -> {
                        try {
                            subscription.close();
                        } catch (Exception ignored) {
                            // closing a subscription only removes a listener
                        }
                    });
                    return mat;
                });
        return HttpResponse.create().withStatus(200)
                .addHeader(RawHeader.create("Cache-Control", "no-cache"))
                .withEntity(HttpEntities.createChunked(EVENT_STREAM, body));
    }

    // ---- sandboxes

    private CompletionStage<HttpResponse> createSandbox(Call call) throws Exception {
        refuseWhenDraining();
        Tenant tenant = call.requireTenant();
        ExecutionSpecParser.SandboxSpec spec = parser.sandbox(call.json(), tenant.policy());
        String id = ExecutionSpecParser.newSandboxId();
        return port.createSandbox(tenant.caller(), id, spec.toCluster())
                .thenApply(info -> {
                    RequestLog.info(log, call.logIds(), "sandbox {} created ({})", info.sandboxId(), info.language());
                    return json(201, sandboxBody(info)).addHeader(RawHeader.create("Location", "/v1/sandboxes/" + info.sandboxId()));
                });
    }

    private static ObjectNode sandboxBody(SandboxInfo info) {
        ObjectNode body = Json.MAPPER.createObjectNode();
        body.put("id", info.sandboxId());
        body.put("language", info.language());
        body.put("status", info.status());
        return body;
    }

    private String sandboxId(Call call) {
        String id = call.params().get("id");
        ExecutionSpecParser.checkSandboxId(id);
        return id;
    }

    private CompletionStage<HttpResponse> getSandbox(Call call) {
        String id = sandboxId(call);
        return port.sandbox(call.requireTenant().caller(), id).thenApply(found -> json(200, sandboxBody(
                found.orElseThrow(() -> ApiException.notFound("no sandbox " + id)))));
    }

    private CompletionStage<HttpResponse> deleteSandbox(Call call) {
        String id = sandboxId(call);
        Tenant tenant = call.requireTenant();
        // the port gives its quota slot back before it answers, so a create that follows it is counted right
        return port.deleteSandbox(tenant.caller(), id).thenApply(found -> {
            SandboxInfo info = found.orElseThrow(() -> ApiException.notFound("no sandbox " + id));
            RequestLog.info(log, call.logIds(), "sandbox {} deleted", id);
            return json(200, sandboxBody(info));
        });
    }

    private CompletionStage<HttpResponse> putFile(Call call) {
        String id = sandboxId(call);
        String path = ExecutionSpecParser.workspacePath(call.params().get("path"));
        return port.writeFile(call.requireTenant().caller(), id, path, call.body()).thenApply(written -> {
            long size = written.orElseThrow(() -> ApiException.notFound("no sandbox " + id));
            ObjectNode body = Json.MAPPER.createObjectNode();
            body.put("path", path);
            body.put("sizeBytes", size);
            return json(200, body);
        });
    }

    private CompletionStage<HttpResponse> getFile(Call call) {
        String id = sandboxId(call);
        String path = ExecutionSpecParser.workspacePath(call.params().get("path"));
        return port.readFile(call.requireTenant().caller(), id, path, settings.maxFileReadBytes()).thenApply(content ->
                HttpResponse.create().withStatus(200).withEntity(ContentTypes.APPLICATION_OCTET_STREAM,
                        content.orElseThrow(() -> ApiException.notFound("no sandbox " + id))));
    }

    // ---- conversations

    private void requireConversations() {
        if (!conversations.available()) {
            throw new ApiException(501, "not_implemented", "conversations need the agents module (modules/agents), "
                    + "which this node does not run");
        }
    }

    private CompletionStage<HttpResponse> startConversation(Call call) {
        refuseWhenDraining();
        requireConversations();
        JsonNode body = call.json();
        if (!body.isObject()) {
            throw ApiException.badRequest("the request body must be a JSON object");
        }
        JsonNode message = body.get("message");
        if (message == null || !message.isTextual() || message.asText().isBlank()) {
            throw ApiException.badRequest("'message' (the first message, a non-empty string) is required");
        }
        JsonNode config = body.get("config");
        if (config == null || !config.isObject()) {
            throw ApiException.badRequest("'config' (the agents' configuration, an object) is required");
        }
        return conversations.start(call.requireTenant().id(), config, message.asText())
                .thenApply(t -> json(201, transcriptBody(t)).addHeader(RawHeader.create("Location", "/v1/conversations/" + t.conversationId())));
    }

    private CompletionStage<HttpResponse> getConversation(Call call) {
        requireConversations();
        String id = call.params().get("id");
        return conversations.transcript(call.requireTenant().id(), id).thenApply(t -> json(200, transcriptBody(
                t.orElseThrow(() -> ApiException.notFound("no conversation " + ExecutionSpecParser.abbreviate(id))))));
    }

    private CompletionStage<HttpResponse> humanInput(Call call) {
        requireConversations();
        String id = call.params().get("id");
        JsonNode text = call.json().get("text");
        if (text == null || !text.isTextual()) {
            throw ApiException.badRequest("'text' (the human's reply, a string) is required");
        }
        return conversations.humanInput(call.requireTenant().id(), id, text.asText()).thenApply(t -> json(200, transcriptBody(
                t.orElseThrow(() -> ApiException.notFound("no conversation " + ExecutionSpecParser.abbreviate(id))))));
    }

    private CompletionStage<HttpResponse> conversationEvents(Call call) {
        requireConversations();
        String id = call.params().get("id");
        long after = call.request().getHeader("Last-Event-ID").map(h -> parseLong(h.value())).orElse(0L);
        TenantId tenant = call.requireTenant().id();
        // looked up first, without blocking: an unknown id is a 404, not an event stream that never starts
        return conversations.transcript(tenant, id).thenApply(found -> {
            if (found.isEmpty()) {
                throw ApiException.notFound("no conversation " + ExecutionSpecParser.abbreviate(id));
            }
            @SuppressWarnings("unchecked")
            Optional<AutoCloseable>[] holder = new Optional[]{Optional.empty()};
            HttpResponse response = sse(sink -> {
                Optional<AutoCloseable> sub = conversations.follow(tenant, id, after,
                        e -> sink.event(e.sequence(), e.type(), eventBody(e)), sink::end);
                holder[0] = sub;
                return sub.orElse(() -> { });
            });
            if (holder[0].isEmpty()) {
                throw ApiException.notFound("no conversation " + ExecutionSpecParser.abbreviate(id));
            }
            return response;
        });
    }

    private static long parseLong(String s) {
        try {
            return Long.parseLong(s.trim());
        } catch (NumberFormatException e) {
            throw ApiException.badRequest("Last-Event-ID must be a number");
        }
    }

    private static ObjectNode eventBody(ConversationService.ConversationEvent e) {
        ObjectNode node = Json.MAPPER.createObjectNode();
        node.put("sequence", e.sequence());
        node.put("type", e.type());
        node.set("body", e.body());
        return node;
    }

    private static ObjectNode transcriptBody(ConversationService.Transcript t) {
        ObjectNode node = Json.MAPPER.createObjectNode();
        node.put("id", t.conversationId());
        node.put("status", t.status());
        var events = node.putArray("events");
        t.events().forEach(e -> events.add(eventBody(e)));
        return node;
    }

    // ---- service endpoints

    private CompletionStage<HttpResponse> languages(Call call) {
        var list = Json.MAPPER.createArrayNode();
        for (Language l : languages.all()) {
            ObjectNode n = list.addObject();
            n.put("name", l.name());
            var aliases = n.putArray("aliases");
            l.aliases().forEach(aliases::add);
            n.put("image", l.image());
        }
        ObjectNode body = Json.MAPPER.createObjectNode();
        body.set("languages", list);
        return CompletableFuture.completedFuture(json(200, body));
    }

    private CompletionStage<HttpResponse> healthz(Call call) {
        ObjectNode body = Json.MAPPER.createObjectNode();
        body.put("status", "ok");
        body.put("backend", port.kind());
        return CompletableFuture.completedFuture(json(200, body));
    }

    private CompletionStage<HttpResponse> readyz(Call call) {
        return port.status().thenApply(s -> {
            boolean ready = s.ready() && !draining.get();
            ObjectNode body = Json.MAPPER.createObjectNode();
            body.put("status", ready ? "ready" : "not_ready");
            body.put("detail", draining.get() ? "shutting down" : s.detail());
            return json(ready ? 200 : 503, body);
        });
    }

    /** On the API port the metrics are the operator's: only with the metrics token, never with a tenant's key. */
    private CompletionStage<HttpResponse> metricsWithToken(Call call) {
        if (settings.metrics().token().isEmpty() || !hasMetricsToken(call.request())) {
            throw new ApiException(401, "unauthenticated", "metrics are for operators: read them on "
                    + settings.metrics().port().map(p -> settings.metrics().host() + ":" + p + "/metrics").orElse("no listener")
                    + " (agentexec.gateway.metrics), or here with the metrics token (agentexec.gateway.metrics.token)");
        }
        return renderMetrics();
    }

    /**
     * The metrics listener (agentexec.gateway.metrics.host/port): {@code GET /metrics} alone, with the
     * metrics token when one is set.
     */
    public CompletionStage<HttpResponse> metricsListener(HttpRequest request) {
        String requestId = "req-" + UUID.randomUUID();
        if (!request.getUri().path().equals("/metrics")) {
            return CompletableFuture.completedFuture(errorResponse(ApiException.notFound(
                    "only /metrics is served here"), requestId, "metrics"));
        }
        if (!request.method().value().equals("GET")) {
            return CompletableFuture.completedFuture(errorResponse(ApiException.methodNotAllowed(
                    request.method().value(), List.of("GET")), requestId, "metrics"));
        }
        if (settings.metrics().token().isPresent() && !hasMetricsToken(request)) {
            return CompletableFuture.completedFuture(errorResponse(new ApiException(401, "unauthenticated",
                    "the metrics token is required (agentexec.gateway.metrics.token)"), requestId, "metrics"));
        }
        return renderMetrics();
    }

    private boolean hasMetricsToken(HttpRequest request) {
        Optional<String> expected = settings.metrics().token();
        Optional<String> given = request.getHeader("Authorization").map(HttpHeader::value);
        return expected.isPresent() && given.isPresent() && java.security.MessageDigest.isEqual(
                ("Bearer " + expected.get()).getBytes(StandardCharsets.UTF_8), given.get().getBytes(StandardCharsets.UTF_8));
    }

    private CompletionStage<HttpResponse> renderMetrics() {
        return port.status().thenApply(s -> HttpResponse.create().withStatus(200).withEntity(
                ContentTypes.TEXT_PLAIN_UTF8, metrics.render(s).getBytes(StandardCharsets.UTF_8))
                .addHeader(RawHeader.create("X-Prometheus-Format", "0.0.4")));
    }

    private CompletionStage<HttpResponse> openApi(Call call) {
        return CompletableFuture.completedFuture(HttpResponse.create().withStatus(200)
                .withEntity(ContentTypes.create(MediaTypes.applicationWithOpenCharset("yaml"),
                        org.apache.pekko.http.javadsl.model.HttpCharsets.UTF_8), openApi));
    }

    public static byte[] readOpenApi() {
        try (InputStream in = HttpApi.class.getResourceAsStream("/openapi.yaml")) {
            if (in == null) {
                throw new IllegalStateException("openapi.yaml is missing from the classpath");
            }
            return in.readAllBytes();
        } catch (IOException e) {
            throw new IllegalStateException("cannot read openapi.yaml", e);
        }
    }

    /** Used by gRPC and tests: whether output reaches followers live. */
    public boolean streamsOutput() {
        return port.streamsOutput();
    }
}
