package io.agentexec.gateway.grpc;

import com.google.protobuf.ByteString;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.gateway.GatewaySettings;
import io.agentexec.gateway.executions.ExecutionEvent;
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
import io.agentexec.gateway.grpc.v1.GetExecutionRequest;
import io.agentexec.gateway.grpc.v1.GetStatsRequest;
import io.agentexec.gateway.grpc.v1.HumanInput;
import io.agentexec.gateway.grpc.v1.LanguageList;
import io.agentexec.gateway.grpc.v1.LanguageServicePowerApi;
import io.agentexec.gateway.grpc.v1.LanguageServicePowerApiHandlerFactory;
import io.agentexec.gateway.grpc.v1.ListLanguagesRequest;
import io.agentexec.gateway.grpc.v1.Sandbox;
import io.agentexec.gateway.grpc.v1.SandboxRef;
import io.agentexec.gateway.grpc.v1.SandboxServicePowerApi;
import io.agentexec.gateway.grpc.v1.SandboxServicePowerApiHandlerFactory;
import io.agentexec.gateway.grpc.v1.StartConversationRequest;
import io.agentexec.gateway.grpc.v1.Transcript;
import io.agentexec.gateway.http.BodyLimit;
import io.agentexec.gateway.http.Json;
import io.agentexec.gateway.service.ApiException;
import io.agentexec.gateway.service.Conversations;
import io.agentexec.gateway.service.Executions;
import io.agentexec.gateway.service.Executions.Started;
import io.agentexec.gateway.service.GatewayService;
import io.agentexec.gateway.service.Outcomes;
import io.agentexec.gateway.service.Requester;
import io.grpc.Status;
import io.grpc.health.v1.Health;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthHandlerFactory;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
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
 * The gRPC services (agentexec.v1 and grpc.health.v1): a thin mapper over the {@link GatewayService}, the same
 * operations as the HTTP API. Each RPC maps its proto message to a service call (an execution or sandbox request
 * straight into the service's form) and the answer to its proto message; what is gRPC's own stays here (server
 * streams, the health service, status codes). Refusals become gRPC statuses (RESOURCE_EXHAUSTED for quotas,
 * UNAVAILABLE for overload, INVALID_ARGUMENT, NOT_FOUND, UNAUTHENTICATED).
 */
public final class GrpcApi {
    private static final int STREAM_BUFFER = 4096;
    private static final Duration HEALTH_POLL = Duration.ofSeconds(1);

    private final GatewaySettings settings;
    private final GatewayService service;
    private final ActorSystem<?> system;
    private final Materializer materializer;

    public GrpcApi(GatewaySettings settings, GatewayService service, ActorSystem<?> system) {
        this.settings = settings;
        this.service = service;
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
                limited(ExecutionServicePowerApiHandlerFactory.partial(new ExecutionRpcs(), ExecutionServicePowerApi.name,
                        materializer, errors, system)),
                limited(SandboxServicePowerApiHandlerFactory.partial(new SandboxRpcs(), SandboxServicePowerApi.name,
                        materializer, errors, system)),
                limited(LanguageServicePowerApiHandlerFactory.partial(new LanguageRpcs(), LanguageServicePowerApi.name,
                        materializer, errors, system)),
                limited(ConversationServicePowerApiHandlerFactory.partial(new ConversationRpcs(), ConversationServicePowerApi.name,
                        materializer, errors, system)),
                limited(HealthHandlerFactory.partial(new HealthService(), Health.name, materializer, errors, system)));
    }

    @SuppressWarnings({"unchecked", "rawtypes"})
    private Function<HttpRequest, CompletionStage<HttpResponse>> limited(Function<HttpRequest, CompletionStage<HttpResponse>> handler) {
        org.apache.pekko.stream.scaladsl.Flow limit = org.apache.pekko.stream.javadsl.Flow.fromGraph(
                new BodyLimit(settings.maxBodyBytes())).asScala();
        return request -> handler.apply(request.withEntity(
                ((org.apache.pekko.http.scaladsl.model.RequestEntity) request.entity()).transformDataBytes(limit)));
    }

    /** A message over the limit is the client's; everything else as pekko-grpc maps it. */
    private org.apache.pekko.japi.Function<Throwable, Trailers> errorTrailers(org.apache.pekko.actor.ActorSystem actorSystem)
            throws Exception {
        org.apache.pekko.japi.Function<Throwable, Trailers> standard = GrpcExceptionHandler.defaultMapper().apply(actorSystem);
        return error -> {
            if (ApiException.unwrap(error) instanceof EntityStreamSizeException) {
                return new Trailers(Status.RESOURCE_EXHAUSTED.withDescription("the request message is larger than "
                        + settings.maxBodyBytes() + " bytes (agentexec.gateway.http.max-body-bytes)"));
            }
            return standard.apply(error);
        };
    }

    // ---- shared

    /** Admits the call's tenant ("authorization" metadata), under the client's "x-request-id" when it sends one. */
    private Requester admit(Metadata metadata) {
        return service.admit(Requester.requestId(metadata.getText("x-request-id")), metadata.getText("authorization"));
    }

    /** Runs a unary call, counted in the request metrics, mapping refusals to gRPC statuses. */
    private <T> CompletionStage<T> unary(String method, Supplier<CompletionStage<T>> call) {
        long started = System.nanoTime();
        service.requestStarted();
        CompletionStage<T> result;
        try {
            result = call.get();
        } catch (RuntimeException e) {
            result = CompletableFuture.failedFuture(e);
        }
        return result.handle((value, error) -> {
            int code = error == null ? 0 : toStatus(error).getCode().value();
            service.requestEnded("grpc", "POST", method, code, System.nanoTime() - started);
            if (error != null) {
                throw new GrpcServiceException(toStatus(error));
            }
            return value;
        });
    }

    /** A server stream that fails with the status of {@code error}. */
    private static <T> Source<T, NotUsed> failed(Throwable error) {
        return Source.failed(new GrpcServiceException(toStatus(error)));
    }

    /** The one table from the service's refusals (HTTP-style statuses) to gRPC codes. */
    static Status toStatus(Throwable error) {
        Throwable e = ApiException.unwrap(error);
        if (e instanceof GrpcServiceException g) {
            return g.getStatus();
        }
        Optional<ApiException> refusal = ApiException.of(e);
        if (refusal.isEmpty()) {
            return Status.INTERNAL.withDescription("internal error");
        }
        ApiException api = refusal.get();
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

    /** An outcome's result, or the status of one without a result. */
    private static ExecutionResult resultOrThrow(ExecutionOutcome outcome, String id) {
        if (Outcomes.hasResult(outcome)) {
            return Protos.toProto(((ExecutionOutcome.Completed) outcome).result(), id);
        }
        throw new GrpcServiceException(toStatus(Outcomes.asError(outcome)));
    }

    final class ExecutionRpcs implements ExecutionServicePowerApi {
        private CompletionStage<Started> start(ExecuteRequest in, Metadata metadata) {
            // streamed: answered before the run ends, as an async one (executor options are refused, use Execute)
            return service.executions().accept(admit(metadata), true, "grpc", form -> Protos.read(in, form))
                    .thenApply(accepted -> (Started) accepted);
        }

        @Override
        public CompletionStage<ExecutionResult> execute(ExecuteRequest in, Metadata metadata) {
            return unary("Execute", () -> {
                return service.executions().accept(admit(metadata), false, "grpc", form -> Protos.read(in, form))
                        .thenCompose(accepted -> {
                            if (accepted instanceof Executions.Executed e) {
                                return e.outcome().thenApply(o -> {
                                    if (!Outcomes.hasResult(o.outcome())) {
                                        throw new GrpcServiceException(toStatus(Outcomes.asError(o.outcome())));
                                    }
                                    return Protos.toProto(o);
                                });
                            }
                            Started s = (Started) accepted;
                            return s.run().outcome().thenApply(o -> resultOrThrow(o, s.id()));
                        });
            });
        }

        @Override
        public CompletionStage<io.agentexec.gateway.grpc.v1.Stats> getStats(GetStatsRequest in, Metadata metadata) {
            return unary("GetStats", () -> service.executions().stats(admit(metadata),
                    in.getExecutor().isEmpty() ? java.util.Optional.empty() : java.util.Optional.of(in.getExecutor()))
                    .thenApply(Protos::toProto));
        }

        /** Output while it runs, then one result; a client that cancels the call or goes away stops the run. */
        @Override
        public Source<io.agentexec.gateway.grpc.v1.ExecutionEvent, NotUsed> executeStream(ExecuteRequest in, Metadata metadata) {
            CompletionStage<Started> started;
            try {
                started = start(in, metadata);
            } catch (RuntimeException e) {
                return failed(e);
            }
            // a run in a sandbox starts once the sandbox's defaults are known (at once when this node knows them)
            return Source.completionStageSource(started.handle((s, error) -> error != null
                            ? GrpcApi.<io.agentexec.gateway.grpc.v1.ExecutionEvent>failed(error) : stream(s)))
                    .mapMaterializedValue(m -> NotUsed.getInstance());
        }

        private Source<io.agentexec.gateway.grpc.v1.ExecutionEvent, NotUsed> stream(Started s) {
            Pair<BoundedSourceQueue<io.agentexec.gateway.grpc.v1.ExecutionEvent>, Source<io.agentexec.gateway.grpc.v1.ExecutionEvent, NotUsed>> pair =
                    Source.<io.agentexec.gateway.grpc.v1.ExecutionEvent>queue(STREAM_BUFFER).preMaterialize(materializer);
            BoundedSourceQueue<io.agentexec.gateway.grpc.v1.ExecutionEvent> queue = pair.first();
            AutoCloseable following = s.tracked().follow(event -> {
                if (event instanceof ExecutionEvent.Output out) {
                    queue.offer(Protos.toProto(out));
                } else if (event instanceof ExecutionEvent.End end) {
                    try {
                        queue.offer(io.agentexec.gateway.grpc.v1.ExecutionEvent.newBuilder()
                                .setResult(resultOrThrow(end.outcome(), s.id())).build());
                        queue.complete();
                    } catch (GrpcServiceException refused) {
                        queue.fail(refused);
                    }
                }
            });
            return pair.second().watchTermination((mat, done) -> {
                done.whenComplete((d, e) -> {
                    closeQuietly(following);
                    s.cancelUnlessEnded();
                });
                return mat;
            });
        }

        @Override
        public CompletionStage<Execution> getExecution(GetExecutionRequest in, Metadata metadata) {
            return unary("GetExecution", () -> service.executions().find(admit(metadata), in.getExecutionId()).thenApply(found -> {
                Execution.Builder b = Execution.newBuilder().setExecutionId(found.id());
                if (found.outcome().isEmpty()) {
                    b.setStatus("running");
                } else {
                    b.setStatus("completed").setResult(resultOrThrow(found.outcome().get(), found.id()));
                }
                return b.build();
            }));
        }
    }

    final class SandboxRpcs implements SandboxServicePowerApi {
        @Override
        public CompletionStage<Sandbox> createSandbox(CreateSandboxRequest in, Metadata metadata) {
            return unary("CreateSandbox", () -> service.sandboxes().create(admit(metadata), form -> Protos.read(in, form))
                    .thenApply(made -> Protos.toProto(made)));
        }

        @Override
        public CompletionStage<Sandbox> deleteSandbox(SandboxRef in, Metadata metadata) {
            return unary("DeleteSandbox", () -> service.sandboxes().delete(admit(metadata), in.getSandboxId())
                    .thenApply(Protos::toProto));
        }

        @Override
        public CompletionStage<FileContent> writeFile(FileRequest in, Metadata metadata) {
            return unary("WriteFile", () -> service.sandboxes().writeFile(admit(metadata), in.getSandboxId(), in.getPath(),
                    in.getContent().toByteArray()).thenApply(size -> FileContent.newBuilder().setPath(in.getPath()).build()));
        }

        @Override
        public CompletionStage<FileContent> readFile(FileRequest in, Metadata metadata) {
            return unary("ReadFile", () -> service.sandboxes().readFile(admit(metadata), in.getSandboxId(), in.getPath())
                    .thenApply(content -> FileContent.newBuilder().setPath(in.getPath())
                            .setContent(ByteString.copyFrom(content)).build()));
        }
    }

    final class LanguageRpcs implements LanguageServicePowerApi {
        @Override
        public CompletionStage<LanguageList> listLanguages(ListLanguagesRequest in, Metadata metadata) {
            return unary("ListLanguages", () -> {
                admit(metadata);
                return CompletableFuture.completedFuture(Protos.toProto(service.languages()));
            });
        }
    }

    final class ConversationRpcs implements ConversationServicePowerApi {
        @Override
        public CompletionStage<Transcript> startConversation(StartConversationRequest in, Metadata metadata) {
            return unary("StartConversation", () -> service.conversations().start(admit(metadata), () -> {
                try {
                    return new Conversations.Opening(Json.MAPPER.readTree(in.getConfigJson()), in.getMessage());
                } catch (java.io.IOException e) {
                    throw ApiException.badRequest("config_json is not valid JSON");
                }
            }).thenApply(Protos::toProto));
        }

        @Override
        public CompletionStage<Transcript> postHumanInput(HumanInput in, Metadata metadata) {
            return unary("PostHumanInput", () -> service.conversations().humanInput(admit(metadata), in.getConversationId(),
                    in::getText).thenApply(Protos::toProto));
        }

        @Override
        public CompletionStage<Transcript> getTranscript(ConversationRef in, Metadata metadata) {
            return unary("GetTranscript", () -> service.conversations().transcript(admit(metadata), in.getConversationId())
                    .thenApply(Protos::toProto));
        }

        @Override
        public CompletionStage<io.agentexec.gateway.grpc.v1.ConversationFiles> listFiles(ConversationRef in, Metadata metadata) {
            return unary("ListFiles", () -> service.conversations().files(admit(metadata), in.getConversationId())
                    .thenApply(files -> io.agentexec.gateway.grpc.v1.ConversationFiles.newBuilder()
                            .setConversationId(in.getConversationId()).addAllPaths(files).build()));
        }

        @Override
        public CompletionStage<FileContent> readFile(io.agentexec.gateway.grpc.v1.ConversationFileRequest in, Metadata metadata) {
            return unary("ReadFile", () -> service.conversations().readFile(admit(metadata), in.getConversationId(),
                    in.getPath(), settings.maxFileReadBytes()).thenApply(content -> FileContent.newBuilder()
                    .setPath(in.getPath()).setContent(com.google.protobuf.ByteString.copyFrom(content)).build()));
        }

        @Override
        public CompletionStage<Transcript> deleteConversation(ConversationRef in, Metadata metadata) {
            return unary("DeleteConversation", () -> service.conversations().delete(admit(metadata), in.getConversationId())
                    .thenApply(Protos::toProto));
        }

        /** Every event from the first, live until the conversation ends; NOT_FOUND at once for an unknown id. */
        @Override
        public Source<io.agentexec.gateway.grpc.v1.ConversationEvent, NotUsed> streamEvents(ConversationRef in, Metadata metadata) {
            CompletionStage<Conversations.Feed> feed;
            try {
                feed = service.conversations().follow(admit(metadata), in.getConversationId(), () -> 0);
            } catch (RuntimeException e) {
                return failed(e);
            }
            return Source.completionStageSource(feed.thenApply(found -> {
                        Pair<BoundedSourceQueue<io.agentexec.gateway.grpc.v1.ConversationEvent>, Source<io.agentexec.gateway.grpc.v1.ConversationEvent, NotUsed>> pair =
                                Source.<io.agentexec.gateway.grpc.v1.ConversationEvent>queue(STREAM_BUFFER).preMaterialize(materializer);
                        AutoCloseable subscription = found.open(e -> pair.first().offer(Protos.toProto(e)), () -> pair.first().complete());
                        return pair.second().watchTermination((mat, done) -> {
                            done.whenComplete((d, e) -> closeQuietly(subscription));
                            return mat;
                        });
                    }).exceptionally(GrpcApi::failed))
                    .mapMaterializedValue(m -> NotUsed.getInstance());
        }
    }

    /** grpc.health.v1: SERVING while the node takes work; "" and every agentexec service name are known. */
    final class HealthService implements Health {
        private final List<String> known = List.of("", ExecutionServicePowerApi.name, SandboxServicePowerApi.name,
                LanguageServicePowerApi.name, ConversationServicePowerApi.name);

        private CompletionStage<HealthCheckResponse> current() {
            return service.readiness().thenApply(r -> HealthCheckResponse.newBuilder().setStatus(r.ready()
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
