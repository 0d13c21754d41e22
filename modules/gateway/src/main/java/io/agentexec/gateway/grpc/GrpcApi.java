package io.agentexec.gateway.grpc;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.google.protobuf.ByteString;
import io.agentexec.cluster.api.ExecutionReply;
import io.agentexec.cluster.port.ExecutionPort;
import io.agentexec.cluster.port.RunHandle;
import io.agentexec.cluster.port.SandboxInfo;
import io.agentexec.gateway.GatewaySettings;
import io.agentexec.gateway.executions.ExecutionEvent;
import io.agentexec.gateway.executions.ExecutionRegistry;
import io.agentexec.gateway.executions.TrackedExecution;
import io.agentexec.gateway.grpc.v1.ConversationRef;
import io.agentexec.gateway.grpc.v1.ConversationServicePowerApi;
import io.agentexec.gateway.grpc.v1.ConversationServicePowerApiHandlerFactory;
import io.agentexec.gateway.grpc.v1.CreateSandboxRequest;
import io.agentexec.gateway.grpc.v1.ExecuteRequest;
import io.agentexec.gateway.grpc.v1.Execution;
import io.agentexec.gateway.grpc.v1.ExecutionResult;
import io.agentexec.gateway.grpc.v1.ExecutionServicePowerApi;
import io.agentexec.gateway.grpc.v1.ExecutionServicePowerApiHandlerFactory;
import io.agentexec.gateway.grpc.v1.FileContent;
import io.agentexec.gateway.grpc.v1.FileRequest;
import io.agentexec.gateway.grpc.v1.FileWritten;
import io.agentexec.gateway.grpc.v1.GetExecutionRequest;
import io.agentexec.gateway.grpc.v1.HumanInput;
import io.agentexec.gateway.grpc.v1.Language;
import io.agentexec.gateway.grpc.v1.LanguageList;
import io.agentexec.gateway.grpc.v1.LanguageServicePowerApi;
import io.agentexec.gateway.grpc.v1.LanguageServicePowerApiHandlerFactory;
import io.agentexec.gateway.grpc.v1.ListLanguagesRequest;
import io.agentexec.gateway.grpc.v1.OutputChunk;
import io.agentexec.gateway.grpc.v1.Sandbox;
import io.agentexec.gateway.grpc.v1.SandboxRef;
import io.agentexec.gateway.grpc.v1.SandboxServicePowerApi;
import io.agentexec.gateway.grpc.v1.SandboxServicePowerApiHandlerFactory;
import io.agentexec.gateway.grpc.v1.StartConversationRequest;
import io.agentexec.gateway.grpc.v1.Transcript;
import io.agentexec.gateway.http.ApiException;
import io.agentexec.gateway.http.ExecutionSpecParser;
import io.agentexec.gateway.http.Json;
import io.agentexec.gateway.metrics.Metrics;
import io.agentexec.gateway.spi.ConversationService;
import io.agentexec.gateway.tenant.Tenant;
import io.agentexec.gateway.tenant.TenantGuard;
import io.agentexec.sandbox.language.LanguageTable;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.grpc.Status;
import io.grpc.health.v1.Health;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthHandlerFactory;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;
import org.apache.pekko.NotUsed;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.grpc.GrpcServiceException;
import org.apache.pekko.grpc.Trailers;
import org.apache.pekko.grpc.javadsl.GrpcExceptionHandler;
import org.apache.pekko.grpc.javadsl.Metadata;
import org.apache.pekko.http.javadsl.model.HttpRequest;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.scaladsl.model.EntityStreamSizeException;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.japi.function.Function;
import org.apache.pekko.stream.BoundedSourceQueue;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.javadsl.Source;

/**
 * The gRPC services (agentexec.v1 and grpc.health.v1): the same operations as the HTTP API, with
 * the same checks; errors become gRPC statuses (RESOURCE_EXHAUSTED for quotas, UNAVAILABLE for
 * overload, INVALID_ARGUMENT, NOT_FOUND, UNAUTHENTICATED).
 */
public final class GrpcApi {
    private static final int STREAM_BUFFER = 4096;
    private static final Duration HEALTH_POLL = Duration.ofSeconds(1);

    private final GatewaySettings settings;
    private final ExecutionPort port;
    private final ConversationService conversations;
    private final TenantGuard guard;
    private final ExecutionRegistry registry;
    private final Metrics metrics;
    private final ExecutionSpecParser parser;
    private final LanguageTable languages;
    private final AtomicBoolean draining;
    private final ActorSystem<?> system;
    private final Materializer materializer;

    public GrpcApi(GatewaySettings settings, ExecutionPort port, ConversationService conversations, TenantGuard guard,
                   ExecutionRegistry registry, Metrics metrics, ExecutionSpecParser parser, LanguageTable languages,
                   AtomicBoolean draining, ActorSystem<?> system) {
        this.settings = settings;
        this.port = port;
        this.conversations = conversations;
        this.guard = guard;
        this.registry = registry;
        this.metrics = metrics;
        this.parser = parser;
        this.languages = languages;
        this.draining = draining;
        this.system = system;
        this.materializer = Materializer.matFromSystem(system);
    }

    /**
     * Partial handlers, one per service; each declines requests for other services. A request's
     * message is read with the HTTP API's limit ({@code agentexec.gateway.http.max-body-bytes}): one
     * larger is refused with RESOURCE_EXHAUSTED before it is read whole.
     */
    public List<Function<HttpRequest, CompletionStage<HttpResponse>>> handlers() {
        org.apache.pekko.japi.Function<org.apache.pekko.actor.ActorSystem, org.apache.pekko.japi.Function<Throwable, Trailers>>
                errors = this::errorTrailers;
        return List.of(
                limited(ExecutionServicePowerApiHandlerFactory.partial(new Executions(), ExecutionServicePowerApi.name,
                        materializer, errors, system)),
                limited(SandboxServicePowerApiHandlerFactory.partial(new Sandboxes(), SandboxServicePowerApi.name,
                        materializer, errors, system)),
                limited(LanguageServicePowerApiHandlerFactory.partial(new Languages(), LanguageServicePowerApi.name,
                        materializer, errors, system)),
                limited(ConversationServicePowerApiHandlerFactory.partial(new Conversations(), ConversationServicePowerApi.name,
                        materializer, errors, system)),
                limited(HealthHandlerFactory.partial(new HealthService(), Health.name, materializer, errors, system)));
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private Function<HttpRequest, CompletionStage<HttpResponse>> limited(Function<HttpRequest, CompletionStage<HttpResponse>> handler) {
        org.apache.pekko.stream.scaladsl.Flow limit = org.apache.pekko.stream.javadsl.Flow.fromGraph(
                new io.agentexec.gateway.http.BodyLimit(settings.maxBodyBytes())).asScala();
        return request -> handler.apply(request.withEntity(
                ((org.apache.pekko.http.scaladsl.model.RequestEntity) request.entity()).transformDataBytes(limit)));
    }

    /** A message over the limit is the client's; everything else as pekko-grpc maps it. */
    private org.apache.pekko.japi.Function<Throwable, Trailers> errorTrailers(org.apache.pekko.actor.ActorSystem actorSystem)
            throws Exception {
        org.apache.pekko.japi.Function<Throwable, Trailers> standard = GrpcExceptionHandler.defaultMapper().apply(actorSystem);
        return error -> {
            Throwable e = error;
            while (e instanceof CompletionException && e.getCause() != null) {
                e = e.getCause();
            }
            if (e instanceof EntityStreamSizeException) {
                return new Trailers(Status.RESOURCE_EXHAUSTED.withDescription("the request message is larger than "
                        + settings.maxBodyBytes() + " bytes (agentexec.gateway.http.max-body-bytes)"));
            }
            return standard.apply(error);
        };
    }

    // ---- shared

    private Tenant admit(Metadata metadata) {
        return guard.admit(metadata.getText("authorization"));
    }

    /** Runs a unary call with the HTTP API's checks, mapping refusals to gRPC statuses. */
    private <T> CompletionStage<T> unary(String method, Supplier<CompletionStage<T>> call) {
        long started = System.nanoTime();
        CompletionStage<T> result;
        try {
            result = call.get();
        } catch (RuntimeException e) {
            result = CompletableFuture.failedFuture(e);
        }
        return result.handle((value, error) -> {
            int code = error == null ? 0 : toStatus(error).getCode().value();
            metrics.recordRequest("grpc", "POST", method, code, System.nanoTime() - started);
            if (error != null) {
                throw new GrpcServiceException(toStatus(error));
            }
            return value;
        });
    }

    static Status toStatus(Throwable error) {
        Throwable e = error;
        while (e instanceof CompletionException && e.getCause() != null) {
            e = e.getCause();
        }
        if (e instanceof GrpcServiceException g) {
            return g.getStatus();
        }
        if (e instanceof io.agentexec.cluster.port.SandboxFileError file) {
            e = ApiException.of(file);
        }
        if (e instanceof io.agentexec.cluster.port.QuotaExceededException quota) {
            e = ApiException.of(quota);
        }
        if (e instanceof InvalidRequestException) {
            return Status.INVALID_ARGUMENT.withDescription(e.getMessage());
        }
        if (e instanceof UnsupportedOperationException) {
            return Status.UNIMPLEMENTED.withDescription(e.getMessage());
        }
        if (e instanceof java.util.concurrent.TimeoutException) {
            return Status.UNAVAILABLE.withDescription("the cluster did not answer in time");
        }
        if (!(e instanceof ApiException api)) {
            return Status.INTERNAL.withDescription("internal error");
        }
        Status s = switch (api.status()) {
            case 400, 413, 415 -> Status.INVALID_ARGUMENT;
            case 401 -> Status.UNAUTHENTICATED;
            case 404 -> Status.NOT_FOUND;
            case 409 -> Status.FAILED_PRECONDITION;
            case 429 -> Status.RESOURCE_EXHAUSTED;
            case 501 -> Status.UNIMPLEMENTED;
            case 503 -> Status.UNAVAILABLE;
            default -> Status.INTERNAL;
        };
        return s.withDescription(api.getMessage());
    }

    private void refuseWhenDraining() {
        if (draining.get()) {
            throw ApiException.unavailable("shutting_down", "this node is shutting down; try another", Duration.ofSeconds(1));
        }
    }

    /** The proto request as the HTTP API's JSON document, so that both are checked by one parser. */
    private static ObjectNode asJson(ExecuteRequest in) {
        ObjectNode node = Json.MAPPER.createObjectNode();
        node.put("language", in.getLanguage());
        node.put("code", in.getCode());
        if (!in.getStdin().isEmpty()) {
            node.put("stdin", in.getStdin().toStringUtf8());
        }
        if (in.getFilesCount() > 0) {
            var files = node.putArray("files");
            in.getFilesList().forEach(f -> files.addObject().put("path", f.getPath())
                    .put("content", Base64.getEncoder().encodeToString(f.getContent().toByteArray()))
                    .put("encoding", "base64"));
        }
        if (!in.getImage().isEmpty()) {
            node.put("image", in.getImage());
        }
        if (!in.getProfile().isEmpty()) {
            node.put("profile", in.getProfile());
        }
        if (in.hasLimits()) {
            node.set("limits", limitsJson(in.getLimits()));
        }
        return node;
    }

    private static ObjectNode limitsJson(io.agentexec.gateway.grpc.v1.Limits l) {
        // proto3 cannot tell 0 from unset: 0 means "the default"; negatives and NaN reach the parser and are refused
        ObjectNode limits = Json.MAPPER.createObjectNode();
        if (l.getTimeoutSeconds() != 0) {
            limits.put("timeoutSeconds", l.getTimeoutSeconds());
        }
        if (l.getMemoryMb() != 0) {
            limits.put("memoryMb", l.getMemoryMb());
        }
        if (l.getCpus() != 0) {
            limits.put("cpus", l.getCpus());
        }
        if (l.getPids() != 0) {
            limits.put("pids", l.getPids());
        }
        if (l.getOutputBytes() != 0) {
            limits.put("outputBytes", l.getOutputBytes());
        }
        return limits;
    }

    static ExecutionResult toProto(io.agentexec.sandbox.model.ExecutionResult r, String id) {
        ExecutionResult.Builder b = ExecutionResult.newBuilder()
                .setVerdict(r.verdict().name()).setExitCode(r.exitCode()).setSignal(r.signal().orElse(0))
                .setStdout(r.stdout()).setStderr(r.stderr()).setOutput(r.output())
                .setStdoutTruncated(r.stdoutTruncated()).setStderrTruncated(r.stderrTruncated())
                .setStdoutSize(r.stdoutBytes()).setStderrSize(r.stderrBytes()).setWallTimeMs(r.wallTimeMs())
                .setPeakMemoryBytes(r.peakMemoryBytes().orElse(0)).setMessage(r.message()).setBackend(r.backend())
                .setAg2Reply(r.ag2Reply()).setExecutionId(id);
        r.filesWritten().forEach(f -> b.addFilesWritten(FileWritten.newBuilder().setPath(f.path()).setSizeBytes(f.sizeBytes())));
        return b.build();
    }

    private record Started(TrackedExecution tracked, RunHandle run) { }

    private Started startExecution(ExecuteRequest in, Metadata metadata) {
        refuseWhenDraining();
        Tenant tenant = admit(metadata);
        Optional<String> sandboxId = in.getSandboxId().isEmpty() ? Optional.empty() : Optional.of(in.getSandboxId());
        ExecutionSpecParser.ExecutionSpec spec = parser.execution(asJson(in), tenant.policy(), sandboxId);
        TrackedExecution tracked = registry.register(tenant.id(), spec.sandboxId());
        RunHandle run = port.start(tenant.caller(), tracked.id(), spec.sandboxId(), spec.request(), tracked);
        tracked.attach(run);
        run.outcome().thenAccept(outcome -> {
            tracked.complete(outcome);
            if (Json.hasResult(outcome)) {
                ExecutionReply.Completed c = (ExecutionReply.Completed) outcome;
                metrics.recordExecution(c.result().verdict().name(), c.result().wallTimeMs());
            } else {
                metrics.recordRefusal(Json.refusal(outcome));
            }
        });
        return new Started(tracked, run);
    }

    private static ExecutionResult resultOrThrow(ExecutionReply outcome, String id) {
        if (Json.hasResult(outcome)) {
            return toProto(((ExecutionReply.Completed) outcome).result(), id);
        }
        throw new GrpcServiceException(toStatus(Json.asError(outcome, Duration.ofSeconds(1))));
    }

    final class Executions implements ExecutionServicePowerApi {
        @Override
        public CompletionStage<ExecutionResult> execute(ExecuteRequest in, Metadata metadata) {
            return unary("Execute", () -> {
                Started s = startExecution(in, metadata);
                return s.run().outcome().thenApply(o -> resultOrThrow(o, s.tracked().id()));
            });
        }

        @Override
        public Source<io.agentexec.gateway.grpc.v1.ExecutionEvent, NotUsed> executeStream(ExecuteRequest in, Metadata metadata) {
            Started s;
            try {
                s = startExecution(in, metadata);
            } catch (RuntimeException e) {
                return Source.failed(new GrpcServiceException(toStatus(e)));
            }
            Pair<BoundedSourceQueue<io.agentexec.gateway.grpc.v1.ExecutionEvent>, Source<io.agentexec.gateway.grpc.v1.ExecutionEvent, NotUsed>> pair =
                    Source.<io.agentexec.gateway.grpc.v1.ExecutionEvent>queue(STREAM_BUFFER).preMaterialize(materializer);
            BoundedSourceQueue<io.agentexec.gateway.grpc.v1.ExecutionEvent> queue = pair.first();
            AutoCloseable following = s.tracked().follow(event -> {
                if (event instanceof ExecutionEvent.Output out) {
                    queue.offer(io.agentexec.gateway.grpc.v1.ExecutionEvent.newBuilder().setOutput(OutputChunk.newBuilder()
                            .setStream(out.stream()).setData(ByteString.copyFromUtf8(out.text()))).build());
                } else if (event instanceof ExecutionEvent.End end) {
                    if (Json.hasResult(end.outcome())) {
                        queue.offer(io.agentexec.gateway.grpc.v1.ExecutionEvent.newBuilder()
                                .setResult(toProto(((ExecutionReply.Completed) end.outcome()).result(), s.tracked().id())).build());
                        queue.complete();
                    } else {
                        queue.fail(new GrpcServiceException(toStatus(Json.asError(end.outcome(), Duration.ofSeconds(1)))));
                    }
                }
            });
            RunHandle run = s.run();
            return pair.second().watchTermination((mat, done) -> {
                done.whenComplete((d, e) -> {
                    try {
                        following.close();
                    } catch (Exception ignored) {
                        // removes a listener only
                    }
                    // the client cancelled the call or went away: stop the code and free its sandbox
                    if (!run.outcome().toCompletableFuture().isDone()) {
                        run.cancel();
                    }
                });
                return mat;
            });
        }

        @Override
        public CompletionStage<Execution> getExecution(GetExecutionRequest in, Metadata metadata) {
            return unary("GetExecution", () -> {
                Tenant tenant = admit(metadata);
                String id = in.getExecutionId();
                // this node's own first; any other gateway node's through the backend (the cluster)
                CompletionStage<Optional<ExecutionReply>> outcome = registry.find(tenant.id(), id)
                        .map(t -> CompletableFuture.completedFuture(t.outcome()))
                        .orElseGet(() -> port.lookup(tenant.caller(), id).thenApply(found -> found
                                .orElseThrow(() -> ApiException.notFound("no execution " + id)).outcome())
                                .toCompletableFuture());
                return outcome.thenApply(o -> {
                    Execution.Builder b = Execution.newBuilder().setExecutionId(id);
                    if (o.isEmpty()) {
                        b.setStatus("running");
                    } else {
                        b.setStatus("completed").setResult(resultOrThrow(o.get(), id));
                    }
                    return b.build();
                });
            });
        }
    }

    final class Sandboxes implements SandboxServicePowerApi {
        @Override
        public CompletionStage<Sandbox> createSandbox(CreateSandboxRequest in, Metadata metadata) {
            return unary("CreateSandbox", () -> {
                refuseWhenDraining();
                Tenant tenant = admit(metadata);
                ObjectNode json = Json.MAPPER.createObjectNode().put("language", in.getLanguage());
                if (!in.getImage().isEmpty()) {
                    json.put("image", in.getImage());
                }
                if (in.hasLimits()) {
                    json.set("limits", limitsJson(in.getLimits()));
                }
                ExecutionSpecParser.SandboxSpec spec = parser.sandbox(json, tenant.policy());
                String id = ExecutionSpecParser.newSandboxId();
                return port.createSandbox(tenant.caller(), id, spec.toCluster())
                        .thenApply(GrpcApi::toProto);
            });
        }

        @Override
        public CompletionStage<Sandbox> deleteSandbox(SandboxRef in, Metadata metadata) {
            return unary("DeleteSandbox", () -> {
                Tenant tenant = admit(metadata);
                ExecutionSpecParser.checkSandboxId(in.getSandboxId());
                return port.deleteSandbox(tenant.caller(), in.getSandboxId()).thenApply(found ->
                        toProto(found.orElseThrow(() -> ApiException.notFound("no sandbox " + in.getSandboxId()))));
            });
        }

        @Override
        public CompletionStage<FileContent> writeFile(FileRequest in, Metadata metadata) {
            return unary("WriteFile", () -> {
                Tenant tenant = admit(metadata);
                ExecutionSpecParser.checkSandboxId(in.getSandboxId());
                String path = ExecutionSpecParser.workspacePath(in.getPath());
                return port.writeFile(tenant.caller(), in.getSandboxId(), path, in.getContent().toByteArray())
                        .thenApply(found -> {
                            found.orElseThrow(() -> ApiException.notFound("no sandbox " + in.getSandboxId()));
                            return FileContent.newBuilder().setPath(path).build();
                        });
            });
        }

        @Override
        public CompletionStage<FileContent> readFile(FileRequest in, Metadata metadata) {
            return unary("ReadFile", () -> {
                Tenant tenant = admit(metadata);
                ExecutionSpecParser.checkSandboxId(in.getSandboxId());
                String path = ExecutionSpecParser.workspacePath(in.getPath());
                return port.readFile(tenant.caller(), in.getSandboxId(), path, settings.maxFileReadBytes())
                        .thenApply(found -> FileContent.newBuilder().setPath(path).setContent(ByteString.copyFrom(
                                found.orElseThrow(() -> ApiException.notFound("no sandbox " + in.getSandboxId())))).build());
            });
        }
    }

    static Sandbox toProto(SandboxInfo info) {
        return Sandbox.newBuilder().setSandboxId(info.sandboxId()).setLanguage(info.language()).setStatus(info.status()).build();
    }

    final class Languages implements LanguageServicePowerApi {
        @Override
        public CompletionStage<LanguageList> listLanguages(ListLanguagesRequest in, Metadata metadata) {
            return unary("ListLanguages", () -> {
                admit(metadata);
                LanguageList.Builder b = LanguageList.newBuilder();
                languages.all().forEach(l -> b.addLanguages(Language.newBuilder().setName(l.name())
                        .addAllAliases(l.aliases()).setImage(l.image())));
                return CompletableFuture.completedFuture(b.build());
            });
        }
    }

    final class Conversations implements ConversationServicePowerApi {
        private void requireAvailable() {
            if (!conversations.available()) {
                throw new ApiException(501, "not_implemented", "conversations need the agents module (modules/agents), "
                        + "which this node does not run");
            }
        }

        @Override
        public CompletionStage<Transcript> startConversation(StartConversationRequest in, Metadata metadata) {
            return unary("StartConversation", () -> {
                refuseWhenDraining();
                Tenant tenant = admit(metadata);
                requireAvailable();
                JsonNode config;
                try {
                    config = Json.MAPPER.readTree(in.getConfigJson());
                } catch (java.io.IOException e) {
                    throw ApiException.badRequest("config_json is not valid JSON");
                }
                return conversations.start(tenant.id(), config, in.getMessage()).thenApply(GrpcApi::toProto);
            });
        }

        @Override
        public CompletionStage<Transcript> postHumanInput(HumanInput in, Metadata metadata) {
            return unary("PostHumanInput", () -> {
                Tenant tenant = admit(metadata);
                requireAvailable();
                return conversations.humanInput(tenant.id(), in.getConversationId(), in.getText()).thenApply(t ->
                        toProto(t.orElseThrow(() -> ApiException.notFound("no conversation " + in.getConversationId()))));
            });
        }

        @Override
        public CompletionStage<Transcript> getTranscript(ConversationRef in, Metadata metadata) {
            return unary("GetTranscript", () -> {
                Tenant tenant = admit(metadata);
                requireAvailable();
                return conversations.transcript(tenant.id(), in.getConversationId()).thenApply(t ->
                        toProto(t.orElseThrow(() -> ApiException.notFound("no conversation " + in.getConversationId()))));
            });
        }

        @Override
        public Source<io.agentexec.gateway.grpc.v1.ConversationEvent, NotUsed> streamEvents(ConversationRef in, Metadata metadata) {
            try {
                Tenant tenant = admit(metadata);
                requireAvailable();
                Pair<BoundedSourceQueue<io.agentexec.gateway.grpc.v1.ConversationEvent>, Source<io.agentexec.gateway.grpc.v1.ConversationEvent, NotUsed>> pair =
                        Source.<io.agentexec.gateway.grpc.v1.ConversationEvent>queue(STREAM_BUFFER).preMaterialize(materializer);
                // looked up first, without blocking: an unknown id is NOT_FOUND, not a stream that never starts
                CompletionStage<Source<io.agentexec.gateway.grpc.v1.ConversationEvent, NotUsed>> stream =
                        conversations.transcript(tenant.id(), in.getConversationId()).thenApply(found -> {
                            found.orElseThrow(() -> ApiException.notFound("no conversation " + in.getConversationId()));
                            Optional<AutoCloseable> sub = conversations.follow(tenant.id(), in.getConversationId(), 0,
                                    e -> pair.first().offer(toProto(e)), () -> pair.first().complete());
                            AutoCloseable subscription = sub.orElseThrow(() -> ApiException.notFound("no conversation "
                                    + in.getConversationId()));
                            return pair.second().watchTermination((mat, done) -> {
                                done.whenComplete((d, e) -> closeQuietly(subscription));
                                return mat;
                            });
                        });
                return Source.completionStageSource(stream.exceptionally(e -> Source.failed(new GrpcServiceException(
                                toStatus(e instanceof java.util.concurrent.CompletionException && e.getCause() != null
                                        ? e.getCause() : e)))))
                        .mapMaterializedValue(m -> NotUsed.getInstance());
            } catch (RuntimeException e) {
                return Source.failed(new GrpcServiceException(toStatus(e)));
            }
        }
    }

    static io.agentexec.gateway.grpc.v1.ConversationEvent toProto(ConversationService.ConversationEvent e) {
        return io.agentexec.gateway.grpc.v1.ConversationEvent.newBuilder().setConversationId(e.conversationId())
                .setSequence(e.sequence()).setType(e.type())
                .setJson(new String(Json.bytes(e.body()), StandardCharsets.UTF_8)).build();
    }

    static Transcript toProto(ConversationService.Transcript t) {
        Transcript.Builder b = Transcript.newBuilder().setConversationId(t.conversationId()).setStatus(t.status());
        t.events().forEach(e -> b.addEvents(toProto(e)));
        return b.build();
    }

    /** grpc.health.v1: SERVING while the node takes work; "" and every agentexec service name are known. */
    final class HealthService implements Health {
        private final List<String> known = List.of("", ExecutionServicePowerApi.name, SandboxServicePowerApi.name,
                LanguageServicePowerApi.name, ConversationServicePowerApi.name);

        private CompletionStage<HealthCheckResponse> current() {
            return port.status().thenApply(s -> HealthCheckResponse.newBuilder().setStatus(s.ready() && !draining.get()
                    ? HealthCheckResponse.ServingStatus.SERVING : HealthCheckResponse.ServingStatus.NOT_SERVING).build());
        }

        @Override
        public CompletionStage<HealthCheckResponse> check(HealthCheckRequest in) {
            if (!known.contains(in.getService())) {
                return CompletableFuture.failedFuture(new GrpcServiceException(Status.NOT_FOUND.withDescription(
                        "unknown service " + in.getService())));
            }
            return current();
        }

        @Override
        public Source<HealthCheckResponse, NotUsed> watch(HealthCheckRequest in) {
            if (!known.contains(in.getService())) {
                return Source.single(HealthCheckResponse.newBuilder()
                        .setStatus(HealthCheckResponse.ServingStatus.SERVICE_UNKNOWN).build());
            }
            AtomicReference<HealthCheckResponse.ServingStatus> last = new AtomicReference<>();
            return Source.tick(Duration.ZERO, HEALTH_POLL, "tick")
                    .mapAsync(1, t -> current())
                    .filter(r -> last.getAndSet(r.getStatus()) != r.getStatus())
                    .mapMaterializedValue(c -> NotUsed.getInstance());
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        try {
            c.close();
        } catch (Exception ignored) {
            // reservations and subscriptions only count or unlisten
        }
    }
}
