package io.agentexec.gateway.http;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.executors.ExecutorOutcome;
import io.agentexec.cluster.port.RunHandle;
import io.agentexec.gateway.GatewaySettings;
import io.agentexec.gateway.executions.ExecutionEvent;
import io.agentexec.gateway.service.ApiException;
import io.agentexec.gateway.service.Conversations;
import io.agentexec.gateway.service.Executions;
import io.agentexec.gateway.service.Executions.Started;
import io.agentexec.gateway.service.GatewayService;
import io.agentexec.gateway.service.Outcomes;
import io.agentexec.gateway.service.RequestRules;
import io.agentexec.gateway.service.Requester;
import io.agentexec.sandbox.language.Language;
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
import org.apache.pekko.NotUsed;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpEntity;
import org.apache.pekko.http.javadsl.model.HttpHeader;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.MediaTypes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.scaladsl.model.EntityStreamSizeException;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The HTTP/1.1 JSON API: a thin mapper over the {@link GatewayService}. A route table (also checked against
 * openapi.yaml by a test) and one handler per route, each reading its request into a service call and the answer
 * into JSON; what is HTTP's own stays here (the body limits, the heartbeat of a long synchronous run, Server-Sent
 * Events, the metrics token). Every refusal is a JSON error, never a stack trace.
 */
public final class HttpApi {
    private static final Logger log = LoggerFactory.getLogger(HttpApi.class);

    enum Body { NONE, JSON, BYTES }

    /** One route: method, path template ({name} is a segment; a trailing {path} takes the rest), auth, body. */
    public record Route(String method, String template, boolean authenticated, Body body, Handler handler) { }

    @FunctionalInterface
    interface Handler {
        CompletionStage<HttpResponse> handle(Call call) throws Exception;
    }

    /** A request matched to a route: its id, who asks (on authenticated routes), path parameters and body. */
    record Call(HttpRequest request, String requestId, Optional<Requester> requester, Map<String, String> params,
                byte[] body, JsonNode json) {
        Requester who() {
            return requester.orElseThrow();
        }
    }

    private final GatewaySettings settings;
    private final GatewayService service;
    private final Materializer materializer;
    private final java.util.concurrent.atomic.AtomicInteger streaming = new java.util.concurrent.atomic.AtomicInteger();
    private final List<Route> routes;
    private final byte[] openApi;

    public HttpApi(GatewaySettings settings, GatewayService service, Materializer materializer) {
        this.settings = settings;
        this.service = service;
        this.materializer = materializer;
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
                new Route("DELETE", "/v1/conversations/{id}", true, Body.NONE, this::deleteConversation),
                new Route("GET", "/v1/conversations/{id}/files", true, Body.NONE, this::conversationFiles),
                new Route("GET", "/v1/conversations/{id}/files/{path}", true, Body.NONE, this::conversationFile),
                new Route("POST", "/v1/conversations/{id}/input", true, Body.JSON, this::humanInput),
                new Route("GET", "/v1/conversations/{id}/events", true, Body.NONE, this::conversationEvents),
                new Route("GET", "/v1/languages", true, Body.NONE, this::languages),
                new Route("GET", "/v1/stats", true, Body.NONE, this::stats),
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
        String requestId = Requester.requestId(request.getHeader("X-Request-Id").map(HttpHeader::value));
        List<String> segments = new ArrayList<>();
        request.getUri().pathSegments().forEach(segments::add);
        String method = request.method().value();
        service.requestStarted();
        String[] routeName = {"unmatched"};
        CompletionStage<HttpResponse> response;
        try {
            response = dispatch(request, requestId, segments, method, routeName);
        } catch (Exception e) {
            response = CompletableFuture.failedFuture(e);
        }
        return response.exceptionally(e -> errorResponse(e, requestId, routeName[0]))
                .thenApply(r -> {
                    service.requestEnded("http", method, routeName[0], r.status().intValue(), System.nanoTime() - started);
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
            throw ApiException.notFound("no such endpoint: " + RequestRules.abbreviate(request.getUri().path()));
        }
        Optional<Route> chosen = pathMatches.stream().filter(r -> r.method().equals(method)).findFirst();
        if (chosen.isEmpty()) {
            routeName[0] = pathMatches.get(0).template();
            throw ApiException.methodNotAllowed(method, pathMatches.stream().map(Route::method).distinct().toList());
        }
        Route route = chosen.get();
        routeName[0] = route.template();
        Optional<Requester> requester = route.authenticated()
                ? Optional.of(service.admit(requestId, request.getHeader("Authorization").map(HttpHeader::value)))
                : Optional.empty();
        Map<String, String> boundParams = params;
        if (route.body() == Body.NONE) {
            return route.handler().handle(new Call(request, requestId, requester, boundParams, new byte[0], Json.MAPPER.nullNode()));
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
                    if (ApiException.unwrap(error) instanceof java.util.concurrent.TimeoutException) {
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
                        return route.handler().handle(new Call(request, requestId, requester, boundParams, bytes, json));
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

    private HttpResponse errorResponse(Throwable failure, String requestId, String route) {
        Throwable e = ApiException.unwrap(failure);
        ApiException api = e instanceof EntityStreamSizeException ? tooLarge() : ApiException.of(e).orElseGet(() -> {
            log.error("request {} on {} failed", requestId, route, e);
            return new ApiException(500, "internal", "internal error; quote request id " + requestId);
        });
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

    private static String firstLine(IOException e) {
        String m = e instanceof JacksonException j ? j.getOriginalMessage() : e.getMessage();
        return m == null ? e.getClass().getSimpleName() : m.lines().findFirst().orElse(m);
    }

    private static HttpResponse json(int status, Object body) {
        return HttpResponse.create().withStatus(status).withEntity(ContentTypes.APPLICATION_JSON, Json.bytes(body));
    }

    // ---- executions

    private CompletionStage<HttpResponse> postExecution(Call call) {
        boolean async = call.request().getUri().query().get("async").map(v -> v.equals("true") || v.equals("1")).orElse(false);
        return service.executions().accept(call.who(), async, "http", form ->
                ExecutionSpecParser.execution(call.json(), Optional.ofNullable(call.params().get("id")), form))
                .thenCompose(accepted -> answer(accepted, async));
    }

    private CompletionStage<HttpResponse> answer(Executions.Accepted accepted, boolean async) {
        if (accepted instanceof Executions.Executed executed) {
            return executedResponse(executed);
        }
        Started started = (Started) accepted;
        RunHandle run = started.run();
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
            Optional<ExecutionOutcome> early = started.ended()
                    ? Optional.of(run.outcome().toCompletableFuture().join()) : Optional.empty();
            if (early.isPresent() && !Outcomes.hasResult(early.get())) {
                throw Outcomes.asError(early.get());
            }
            if (async) {
                ObjectNode body = Json.MAPPER.createObjectNode();
                body.put("id", started.id());
                body.put("status", early.isPresent() ? "completed" : "running");
                body.put("url", "/v1/executions/" + started.id());
                body.put("eventsUrl", "/v1/executions/" + started.id() + "/events");
                return json(202, body).addHeader(RawHeader.create("Location", "/v1/executions/" + started.id()));
            }
            if (early.isPresent()) {
                return json(200, Json.completed((ExecutionOutcome.Completed) early.get(), started.id()));
            }
            return HttpResponse.create().withStatus(200)
                    .withEntity(HttpEntities.createChunked(ContentTypes.APPLICATION_JSON, resultBody(started)));
        });
    }

    /**
     * The answer of a request the seed's executors ran: in one plain response when it ends within one heartbeat
     * interval, else a streamed body with spaces while it runs (as a plain synchronous run's).
     */
    private CompletionStage<HttpResponse> executedResponse(Executions.Executed executed) {
        CompletableFuture<ExecutorOutcome> outcome = executed.outcome().toCompletableFuture();
        return outcome.thenApply(o -> (Void) null).exceptionally(e -> null)
                .completeOnTimeout(null, settings.heartbeatInterval().toMillis(), TimeUnit.MILLISECONDS)
                .thenApply(ignored -> {
                    if (outcome.isDone()) {
                        ExecutorOutcome o = outcome.join(); // a failure is answered as its error
                        if (!Outcomes.hasResult(o.outcome())) {
                            throw Outcomes.asError(o.outcome());
                        }
                        return json(200, Json.executorOutcome(o));
                    }
                    Source<ByteString, NotUsed> result = Source.completionStage(outcome.handle((o, e) -> {
                        if (e != null) {
                            ApiException api = ApiException.of(ApiException.unwrap(e)).orElseGet(() ->
                                    new ApiException(500, "internal", "internal error"));
                            return ByteString.fromArray(Json.bytes(Json.error(api.code(), api.getMessage(), executed.id())));
                        }
                        return ByteString.fromArray(Json.bytes(executedBody(o)));
                    }));
                    Duration beat = settings.heartbeatInterval();
                    Source<ByteString, NotUsed> heartbeat = Source.tick(beat, beat, ByteString.fromString(" "))
                            .mapMaterializedValue(c -> NotUsed.getInstance());
                    return HttpResponse.create().withStatus(200).withEntity(HttpEntities.createChunked(
                            ContentTypes.APPLICATION_JSON, counted(heartbeat.merge(result, true), () -> { })));
                });
    }

    /** An executors' outcome as the body of a committed (200) response: its result, or its error document. */
    private static ObjectNode executedBody(ExecutorOutcome o) {
        if (!Outcomes.hasResult(o.outcome())) {
            return Json.outcome(o.outcome(), o.outcome().executionKey());
        }
        return Json.executorOutcome(o);
    }

    /** The caller's execution statistics (the seed's execution_stats), optionally of one executor name. */
    private CompletionStage<HttpResponse> stats(Call call) {
        Optional<String> executor = call.request().getUri().query().get("executor");
        return service.executions().stats(call.who(), executor).thenApply(report -> json(200, Json.stats(report)));
    }

    /**
     * The body of a synchronous execution, committed once the run is admitted: spaces while it
     * runs (JSON allows leading whitespace) so a client that went away is noticed, then the result.
     * If the stream ends before the run does, the client left: the run is cancelled.
     */
    private Source<ByteString, NotUsed> resultBody(Started started) {
        Source<ByteString, NotUsed> result = Source.completionStage(started.run().outcome().thenApply(outcome ->
                ByteString.fromArray(Json.bytes(Json.outcome(outcome, started.id())))));
        Duration beat = settings.heartbeatInterval();
        Source<ByteString, NotUsed> heartbeat = Source.tick(beat, beat, ByteString.fromString(" "))
                .mapMaterializedValue(c -> NotUsed.getInstance());
        return counted(heartbeat.merge(result, true), started::cancelUnlessEnded);
    }

    /**
     * A streamed answer counted while it is written ({@link #streamingAnswers}); {@code ended} runs when it ends,
     * whole or cut (the client went away).
     */
    private Source<ByteString, NotUsed> counted(Source<ByteString, NotUsed> body, Runnable ended) {
        return body.watchTermination((mat, done) -> {
            streaming.incrementAndGet();
            done.whenComplete((d, error) -> {
                streaming.decrementAndGet();
                ended.run();
            });
            return mat;
        });
    }

    /**
     * Streamed answers of synchronous runs still being written. A node's drain waits for them as for the runs: the
     * run ends a moment before its answer's last bytes are written, and a connection closed in between cut the body
     * ("connection reset" while reading a chunk, seen in GracefulShutdownTest on a loaded machine).
     */
    public int streamingAnswers() {
        return streaming.get();
    }

    private CompletionStage<HttpResponse> getExecution(Call call) {
        return service.executions().find(call.who(), call.params().get("id"))
                .thenApply(found -> json(200, Json.execution(found, call.requestId())));
    }

    private CompletionStage<HttpResponse> cancelExecution(Call call) {
        return service.executions().cancel(call.who(), call.params().get("id"))
                .thenApply(found -> json(200, Json.execution(found, call.requestId())));
    }

    /** Output events, then one {@code result} or {@code error} event; a run this node took replays its output first. */
    private CompletionStage<HttpResponse> executionEvents(Call call) {
        return service.executions().follow(call.who(), call.params().get("id")).thenApply(tracked ->
                ServerSentEvents.response(materializer, settings.sseKeepAlive(), sink -> tracked.follow(event -> {
                    if (event instanceof ExecutionEvent.Output out) {
                        sink.event(out.sequence(), "output", Json.output(out));
                    } else if (event instanceof ExecutionEvent.End end) {
                        sink.event(end.sequence(), Outcomes.hasResult(end.outcome()) ? "result" : "error",
                                Json.outcome(end.outcome(), tracked.id()));
                        sink.end();
                    }
                })));
    }

    // ---- sandboxes

    private CompletionStage<HttpResponse> createSandbox(Call call) {
        return service.sandboxes().create(call.who(), form -> ExecutionSpecParser.sandbox(call.json(), form))
                .thenApply(made -> json(201, Json.sandbox(made.info(), made.defaults()))
                        .addHeader(RawHeader.create("Location", "/v1/sandboxes/" + made.info().sandboxId())));
    }

    private CompletionStage<HttpResponse> getSandbox(Call call) {
        return service.sandboxes().get(call.who(), call.params().get("id"))
                .thenApply(found -> json(200, Json.sandbox(found.info(), found.defaults())));
    }

    private CompletionStage<HttpResponse> deleteSandbox(Call call) {
        return service.sandboxes().delete(call.who(), call.params().get("id")).thenApply(info -> json(200, Json.sandbox(info)));
    }

    private CompletionStage<HttpResponse> putFile(Call call) {
        String path = call.params().get("path");
        return service.sandboxes().writeFile(call.who(), call.params().get("id"), path, call.body()).thenApply(size -> {
            ObjectNode body = Json.MAPPER.createObjectNode();
            body.put("path", path);
            body.put("sizeBytes", size);
            return json(200, body);
        });
    }

    private CompletionStage<HttpResponse> getFile(Call call) {
        return service.sandboxes().readFile(call.who(), call.params().get("id"), call.params().get("path"))
                .thenApply(content -> HttpResponse.create().withStatus(200).withEntity(ContentTypes.APPLICATION_OCTET_STREAM, content));
    }

    // ---- conversations

    private CompletionStage<HttpResponse> startConversation(Call call) {
        return service.conversations().start(call.who(), () -> {
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
            return new Conversations.Opening(config, message.asText());
        }).thenApply(t -> json(201, Json.transcript(t))
                .addHeader(RawHeader.create("Location", "/v1/conversations/" + t.conversationId())));
    }

    private CompletionStage<HttpResponse> getConversation(Call call) {
        return service.conversations().transcript(call.who(), call.params().get("id"))
                .thenApply(t -> json(200, Json.transcript(t)));
    }

    /** Deletes an ended conversation's workspace (its files); the transcript stays. */
    private CompletionStage<HttpResponse> deleteConversation(Call call) {
        return service.conversations().delete(call.who(), call.params().get("id"))
                .thenApply(t -> json(200, Json.transcript(t)));
    }

    /** The files the conversation's code wrote in its workspace. */
    private CompletionStage<HttpResponse> conversationFiles(Call call) {
        String id = call.params().get("id");
        return service.conversations().files(call.who(), id).thenApply(files -> {
            ObjectNode body = Json.MAPPER.createObjectNode();
            body.put("id", id);
            var list = body.putArray("files");
            files.forEach(f -> list.addObject().put("path", f).put("url", "/v1/conversations/" + id + "/files/" + f));
            return json(200, body);
        });
    }

    private CompletionStage<HttpResponse> conversationFile(Call call) {
        return service.conversations().readFile(call.who(), call.params().get("id"), call.params().get("path"),
                        settings.maxFileReadBytes())
                .thenApply(content -> HttpResponse.create().withStatus(200).withEntity(ContentTypes.APPLICATION_OCTET_STREAM, content));
    }

    private CompletionStage<HttpResponse> humanInput(Call call) {
        return service.conversations().humanInput(call.who(), call.params().get("id"), () -> {
            JsonNode text = call.json().get("text");
            if (text == null || !text.isTextual()) {
                throw ApiException.badRequest("'text' (the human's reply, a string) is required");
            }
            return text.asText();
        }).thenApply(t -> json(200, Json.transcript(t)));
    }

    /** The events after the client's Last-Event-ID, as Server-Sent Events. */
    private CompletionStage<HttpResponse> conversationEvents(Call call) {
        return service.conversations().follow(call.who(), call.params().get("id"),
                        () -> call.request().getHeader("Last-Event-ID").map(h -> parseLong(h.value())).orElse(0L))
                .thenApply(feed -> ServerSentEvents.response(materializer, settings.sseKeepAlive(), sink -> feed.open(e -> sink.event(e.sequence(), e.type(), Json.conversationEvent(e)), sink::end)));
    }

    private static long parseLong(String s) {
        try {
            return Long.parseLong(s.trim());
        } catch (NumberFormatException e) {
            throw ApiException.badRequest("Last-Event-ID must be a number");
        }
    }

    // ---- service endpoints

    private CompletionStage<HttpResponse> languages(Call call) {
        var list = Json.MAPPER.createArrayNode();
        for (Language l : service.languages()) {
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
        body.put("backend", service.backend());
        return CompletableFuture.completedFuture(json(200, body));
    }

    private CompletionStage<HttpResponse> readyz(Call call) {
        return service.readiness().thenApply(r -> {
            ObjectNode body = Json.MAPPER.createObjectNode();
            body.put("status", r.ready() ? "ready" : "not_ready");
            body.put("detail", r.detail());
            return json(r.ready() ? 200 : 503, body);
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
        return service.metricsText().thenApply(text -> HttpResponse.create().withStatus(200).withEntity(
                ContentTypes.TEXT_PLAIN_UTF8, text.getBytes(StandardCharsets.UTF_8))
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
}
