package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.ConfigFactory;
import io.agentexec.gateway.grpc.v1.CreateSandboxRequest;
import io.agentexec.gateway.grpc.v1.ExecuteRequest;
import io.agentexec.gateway.grpc.v1.ExecutionEvent;
import io.agentexec.gateway.grpc.v1.ExecutionResult;
import io.agentexec.gateway.grpc.v1.ExecutionServiceClient;
import io.agentexec.gateway.grpc.v1.FileRequest;
import io.agentexec.gateway.grpc.v1.LanguageServiceClient;
import io.agentexec.gateway.grpc.v1.Limits;
import io.agentexec.gateway.grpc.v1.ListLanguagesRequest;
import io.agentexec.gateway.grpc.v1.Sandbox;
import io.agentexec.gateway.grpc.v1.SandboxRef;
import io.agentexec.gateway.grpc.v1.SandboxServiceClient;
import io.agentexec.gateway.grpc.v1.WorkspaceFile;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.health.v1.HealthCheckRequest;
import io.grpc.health.v1.HealthCheckResponse;
import io.grpc.health.v1.HealthClient;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.stream.Stream;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.apache.pekko.stream.javadsl.Sink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import io.agentexec.testkit.Await;

/** gRPC on the HTTP port (h2c), with the same tenants and checks as HTTP, and the standard health service. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class GrpcApiTest {
    private TestNode node;
    private ActorSystem<Void> clientSystem;
    private ExecutionServiceClient executions;
    private SandboxServiceClient sandboxes;
    private LanguageServiceClient languages;
    private HealthClient health;

    @BeforeAll
    void start() throws Exception {
        node = TestNode.start("engine", Map.of());
        clientSystem = ActorSystem.create(Behaviors.empty(), "grpc-test-client",
                ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
        GrpcClientSettings settings = GrpcClientSettings.connectToServiceAt("127.0.0.1", node.gateway.grpcPort(), clientSystem)
                .withTls(false);
        executions = ExecutionServiceClient.create(settings, clientSystem);
        sandboxes = SandboxServiceClient.create(settings, clientSystem);
        languages = LanguageServiceClient.create(settings, clientSystem);
        health = HealthClient.create(settings, clientSystem);
    }

    @AfterAll
    void stop() {
        executions.close();
        sandboxes.close();
        languages.close();
        health.close();
        clientSystem.terminate();
        node.close();
    }

    private static String bearer(String key) {
        return "Bearer " + key;
    }

    private static Status.Code codeOf(ExecutionException e) {
        Throwable c = e.getCause();
        if (c instanceof StatusRuntimeException s) {
            return s.getStatus().getCode();
        }
        if (c instanceof org.apache.pekko.grpc.GrpcServiceException g) {
            return g.getStatus().getCode();
        }
        throw new AssertionError("not a gRPC status: " + c, c);
    }

    @Test
    void executesUnary() throws Exception {
        ExecutionResult r = Await.result(executions.execute().addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(ExecuteRequest.newBuilder().setLanguage("python").setCode("print(6*7)").build()));
        assertEquals("OK", r.getVerdict());
        assertEquals("42\n", r.getStdout());
        assertTrue(r.getExecutionId().startsWith("exe-"));
    }

    @Test
    void theSeedsExecutorsAndStatisticsOverGrpc() throws Exception {
        String executor = "grpc-" + java.util.UUID.randomUUID().toString().substring(0, 8);
        ExecutionResult refused = Await.result(executions.execute().addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(ExecuteRequest.newBuilder().setLanguage("python").setCode("import subprocess")
                        .setPolicy("secure").setExecutor(executor).build()));
        assertEquals("POLICY_VIOLATION", refused.getVerdict());
        assertEquals("Potentially unsafe code detected: import subprocess", refused.getMessage());

        ExecutionResult retried = Await.result(executions.execute().addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(ExecuteRequest.newBuilder().setLanguage("bash").setCode("exit 2").setRetries(2)
                        .setExecutor(executor).build()));
        assertEquals("RUNTIME_ERROR", retried.getVerdict());
        assertEquals(2, retried.getAttemptsCount(), "both attempts in the history");

        ExecutionResult tested = Await.result(executions.execute().addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(ExecuteRequest.newBuilder().setLanguage("python").setCode("print(input()[::-1])")
                        .addTests(io.agentexec.gateway.grpc.v1.TestCase.newBuilder().setStdin("abc").setExpectedStdout("cba"))
                        .addTests(io.agentexec.gateway.grpc.v1.TestCase.newBuilder().setStdin("ab").setExpectedStdout("ab"))
                        .setExecutor(executor).build()));
        assertEquals(1, tested.getTests().getPassed());
        assertEquals(1, tested.getTests().getFailed());
        assertEquals("FAIL", tested.getTests().getCases(1).getStatus());

        ExecutionResult profiled = Await.result(executions.execute().addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(ExecuteRequest.newBuilder().setLanguage("python").setCode("print(1)").setProfile("complex").build()));
        assertEquals("complex", profiled.getProfile());
        assertTrue(profiled.getNotesList().toString().contains("held at the ceiling"), profiled.getNotesList().toString());

        ExecutionException streamed = assertThrows(ExecutionException.class, () -> Await.result(executions.executeStream()
                .addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(ExecuteRequest.newBuilder().setLanguage("python").setCode("1").setRetries(2).build())
                .runWith(Sink.seq(), clientSystem)));
        assertEquals(Status.Code.INVALID_ARGUMENT, codeOf(streamed));

        // a sandbox whose runs default to the cache: a run that says cache = false runs again
        Sandbox caching = Await.result(sandboxes.createSandbox().addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(io.agentexec.gateway.grpc.v1.CreateSandboxRequest.newBuilder().setLanguage("python").setCache(true)
                        .build()));
        assertTrue(caching.getDefaults().getCache(), caching.toString());
        ExecuteRequest random = ExecuteRequest.newBuilder().setLanguage("python").setSandboxId(caching.getSandboxId())
                .setCode("import random\nprint(random.random())").build();
        ExecutionResult first = Await.result(executions.execute().addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(random));
        ExecutionResult again = Await.result(executions.execute().addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(random));
        assertTrue(again.getCached(), "the sandbox's cache answered: " + again);
        assertEquals(first.getStdout(), again.getStdout());
        ExecutionResult fresh = Await.result(executions.execute().addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(random.toBuilder().setCache(false).build()));
        assertFalse(fresh.getCached(), "cache = false over gRPC turns the sandbox's cache off: " + fresh);
        Await.result(sandboxes.deleteSandbox().addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(io.agentexec.gateway.grpc.v1.SandboxRef.newBuilder().setSandboxId(caching.getSandboxId()).build()));

        // four runs counted under the executor: the refusal, the retried run (one sample, two attempts), two test cases
        long deadline = System.nanoTime() + 30_000_000_000L;
        io.agentexec.gateway.grpc.v1.Stats stats;
        do {
            stats = Await.result(executions.getStats().addHeader("authorization", bearer(TestNode.ALICE))
                    .invoke(io.agentexec.gateway.grpc.v1.GetStatsRequest.newBuilder().setExecutor(executor).build()));
        } while (stats.getOverall().getCount() < 4 && System.nanoTime() < deadline);
        assertEquals(4, stats.getOverall().getCount(), stats.toString());
        assertEquals(2, stats.getOverall().getSuccesses(), "the two test cases ran OK: " + stats);
    }

    @Test
    void streamsOutputThenOneResult() throws Exception {
        List<ExecutionEvent> events = Await.result(executions.executeStream().addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(ExecuteRequest.newBuilder().setLanguage("python")
                        .setCode("import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.3)").build())
                .runWith(Sink.seq(), clientSystem));
        assertTrue(events.size() >= 2, events.toString());
        StringBuilder out = new StringBuilder();
        events.subList(0, events.size() - 1).forEach(e -> out.append(e.getOutput().getData().toStringUtf8()));
        assertEquals("0\n1\n2\n", out.toString());
        ExecutionEvent last = events.get(events.size() - 1);
        assertTrue(last.hasResult());
        assertEquals("OK", last.getResult().getVerdict());
    }

    @Test
    void refusalsAreGrpcStatuses() {
        ExecutionException unauth = assertThrows(ExecutionException.class, () -> Await.result(executions.execute()
                .invoke(ExecuteRequest.newBuilder().setLanguage("python").setCode("1").build())));
        assertEquals(Status.Code.UNAUTHENTICATED, codeOf(unauth));

        ExecutionException badLanguage = assertThrows(ExecutionException.class, () -> Await.result(executions.execute()
                .addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(ExecuteRequest.newBuilder().setLanguage("/bin/sh").setCode("1").build())));
        assertEquals(Status.Code.INVALID_ARGUMENT, codeOf(badLanguage));

        ExecutionException negative = assertThrows(ExecutionException.class, () -> Await.result(executions.execute()
                .addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(ExecuteRequest.newBuilder().setLanguage("python").setCode("1")
                        .setLimits(Limits.newBuilder().setTimeoutSeconds(-5)).build())));
        assertEquals(Status.Code.INVALID_ARGUMENT, codeOf(negative));

        ExecutionException rate = assertThrows(ExecutionException.class, () -> {
            for (int i = 0; i < 3; i++) {
                Await.result(languages.listLanguages().addHeader("authorization", bearer(TestNode.DAVE))
                        .invoke(ListLanguagesRequest.getDefaultInstance()));
            }
        });
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, codeOf(rate));
    }

    /** The node's one request limit, agentexec.gateway.http.max-body-bytes (64 KiB here), holds for gRPC messages too. */
    @Test
    void messagesLargerThanTheBodyLimitAreRefused() throws Exception {
        String big = "#" + "x".repeat(100 * 1024) + "\nprint('ran')";
        ExecutionException tooLarge = assertThrows(ExecutionException.class, () -> Await.result(executions.execute()
                .addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(ExecuteRequest.newBuilder().setLanguage("python").setCode(big).build())));
        assertEquals(Status.Code.RESOURCE_EXHAUSTED, codeOf(tooLarge));
        assertTrue(tooLarge.getCause().getMessage().contains("max-body-bytes"), tooLarge.getCause().getMessage());

        Sandbox s = Await.result(sandboxes.createSandbox().addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(CreateSandboxRequest.newBuilder().setLanguage("bash").build()));
        try {
            ExecutionException file = assertThrows(ExecutionException.class, () -> Await.result(sandboxes.writeFile()
                    .addHeader("authorization", bearer(TestNode.ALICE)).invoke(FileRequest.newBuilder()
                            .setSandboxId(s.getSandboxId()).setPath("big.bin")
                            .setContent(com.google.protobuf.ByteString.copyFrom(new byte[100 * 1024])).build())));
            assertEquals(Status.Code.RESOURCE_EXHAUSTED, codeOf(file));
            // under the limit it goes through, on the same client
            ExecutionResult small = Await.result(executions.execute().addHeader("authorization", bearer(TestNode.ALICE))
                    .invoke(ExecuteRequest.newBuilder().setLanguage("python")
                            .setCode("#" + "x".repeat(30 * 1024) + "\nprint('ran')").build()));
            assertEquals("ran\n", small.getStdout());
        } finally {
            Await.result(sandboxes.deleteSandbox().addHeader("authorization", bearer(TestNode.ALICE))
                    .invoke(SandboxRef.newBuilder().setSandboxId(s.getSandboxId()).build()));
        }
    }

    @Test
    void sandboxesAreTenantScoped() throws Exception {
        Sandbox s = Await.result(sandboxes.createSandbox().addHeader("authorization", bearer(TestNode.ALICE))
                .invoke(CreateSandboxRequest.newBuilder().setLanguage("bash").build()));
        try {
            Await.result(sandboxes.writeFile().addHeader("authorization", bearer(TestNode.ALICE)).invoke(FileRequest.newBuilder()
                    .setSandboxId(s.getSandboxId()).setPath("x.txt")
                    .setContent(com.google.protobuf.ByteString.copyFromUtf8("hello")).build()));
            ExecutionResult r = Await.result(executions.execute().addHeader("authorization", bearer(TestNode.ALICE))
                    .invoke(ExecuteRequest.newBuilder().setSandboxId(s.getSandboxId()).setLanguage("bash").setCode("cat x.txt").build()));
            assertEquals("hello", r.getStdout());
            ExecutionException other = assertThrows(ExecutionException.class, () -> Await.result(sandboxes.readFile()
                    .addHeader("authorization", bearer(TestNode.BOB))
                    .invoke(FileRequest.newBuilder().setSandboxId(s.getSandboxId()).setPath("x.txt").build())));
            assertEquals(Status.Code.NOT_FOUND, codeOf(other));
        } finally {
            Await.result(sandboxes.deleteSandbox().addHeader("authorization", bearer(TestNode.ALICE))
                    .invoke(SandboxRef.newBuilder().setSandboxId(s.getSandboxId()).build()));
        }
    }

    /** The transports log alike: a gRPC run's accepted and ended lines carry its request, tenant and execution ids. */
    @Test
    void aRunIsLoggedWithItsIdsAndItsOutcomeAsOverHttp() throws Exception {
        String requestId = "grpc-log-" + java.util.UUID.randomUUID();
        try (LogCapture logs = new LogCapture()) {
            ExecutionResult r = Await.result(executions.execute().addHeader("authorization", bearer(TestNode.ALICE))
                    .addHeader("x-request-id", requestId)
                    .invoke(ExecuteRequest.newBuilder().setLanguage("python").setCode("print(1)").build()));
            assertEquals("OK", r.getVerdict());
            String id = r.getExecutionId();
            // the ended line is written when the outcome arrives, maybe just after the answer: wait for it, bounded
            java.util.function.Supplier<Optional<JsonNode>> ended = () -> logs.lines().stream()
                    .filter(l -> l.path("message").asText().startsWith("execution ended") && id.equals(l.path("executionId").asText()))
                    .findFirst();
            for (int i = 0; i < 100 && ended.get().isEmpty(); i++) {
                Thread.sleep(50);
            }
            JsonNode end = ended.get().orElseThrow(() -> new AssertionError("no 'execution ended' line for " + id + " in " + logs.lines()));
            assertEquals("execution ended: OK exit 0 in " + r.getWallTimeMs() + " ms", end.path("message").asText());
            assertEquals("alice", end.path("tenant").asText(), end::toString);
            assertEquals(requestId, end.path("requestId").asText(), end::toString);
            JsonNode accepted = logs.lines().stream().filter(l -> l.path("message").asText().startsWith("execution accepted")
                    && id.equals(l.path("executionId").asText())).findFirst()
                    .orElseThrow(() -> new AssertionError("no 'execution accepted' line for " + id + " in " + logs.lines()));
            assertEquals("alice", accepted.path("tenant").asText(), accepted::toString);
            assertEquals(requestId, accepted.path("requestId").asText(), accepted::toString);
            assertEquals("INFO", accepted.path("level").asText());
        }
    }

    static Stream<Arguments> badRequests() {
        ExecuteRequest python = ExecuteRequest.newBuilder().setLanguage("python").setCode("print(1)").build();
        return Stream.of(
                Arguments.of(python.toBuilder().setLanguage("/bin/sh").build(), Status.Code.INVALID_ARGUMENT, "language name"),
                Arguments.of(python.toBuilder().setLanguage("").build(), Status.Code.INVALID_ARGUMENT, "language name"),
                Arguments.of(python.toBuilder().setLanguage("cobol").build(), Status.Code.INVALID_ARGUMENT, "unknown language 'cobol'"),
                Arguments.of(python.toBuilder().setLimits(Limits.newBuilder().setTimeoutSeconds(-5)).build(),
                        Status.Code.INVALID_ARGUMENT, "limits.timeoutSeconds must be positive; got -5.0"),
                Arguments.of(python.toBuilder().setLimits(Limits.newBuilder().setPids(-1)).build(),
                        Status.Code.INVALID_ARGUMENT, "limits.pids must be positive; got -1"),
                Arguments.of(python.toBuilder().setLimits(Limits.newBuilder().setCpus(Double.NaN)).build(),
                        Status.Code.INVALID_ARGUMENT, "limits.cpus must be a finite number"),
                Arguments.of(python.toBuilder().setLimits(Limits.newBuilder().setMemoryMb(2)).build(),
                        Status.Code.INVALID_ARGUMENT, "memory"),
                Arguments.of(python.toBuilder().setProfile("gpu").build(), Status.Code.INVALID_ARGUMENT, "unknown profile 'gpu'"),
                Arguments.of(python.toBuilder().setImage("ubuntu:latest").build(), Status.Code.INVALID_ARGUMENT, "not allowed"),
                Arguments.of(python.toBuilder().addFiles(WorkspaceFile.newBuilder().setPath("../etc/passwd")).build(),
                        Status.Code.INVALID_ARGUMENT, "a file path must stay inside the workspace; got '../etc/passwd'"),
                Arguments.of(python.toBuilder().addFiles(WorkspaceFile.newBuilder().setPath("/etc/passwd")).build(),
                        Status.Code.INVALID_ARGUMENT, "a file path must be relative to the workspace"),
                Arguments.of(python.toBuilder().setSandboxId("../x").build(), Status.Code.INVALID_ARGUMENT, "sandbox id"),
                Arguments.of(python.toBuilder().setSandboxId("sbx-nope").build(), Status.Code.NOT_FOUND, "sbx-nope"),
                // the first problem is the one reported, as over HTTP: the limits come before the language
                Arguments.of(python.toBuilder().setLanguage("cobol").setLimits(Limits.newBuilder().setCpus(-1)).build(),
                        Status.Code.INVALID_ARGUMENT, "limits.cpus must be positive; got -1.0"));
    }

    /** gRPC reads proto straight into the service's rules: the refusals, and their messages, are HTTP's. */
    @ParameterizedTest
    @MethodSource("badRequests")
    void badInputIsRefusedWithTheHttpApisMessages(ExecuteRequest request, Status.Code code, String messagePart) {
        ExecutionException refused = assertThrows(ExecutionException.class, () -> Await.result(executions.execute()
                .addHeader("authorization", bearer(TestNode.BOB)).invoke(request)));
        assertEquals(code, codeOf(refused));
        assertTrue(refused.getCause().getMessage().contains(messagePart), refused.getCause().getMessage());
    }

    @Test
    void badSandboxesAreRefusedWithTheHttpApisMessages() {
        ExecutionException language = assertThrows(ExecutionException.class, () -> Await.result(sandboxes.createSandbox()
                .addHeader("authorization", bearer(TestNode.BOB)).invoke(CreateSandboxRequest.newBuilder().setLanguage("cobol").build())));
        assertEquals(Status.Code.INVALID_ARGUMENT, codeOf(language));
        assertTrue(language.getCause().getMessage().contains("unknown language 'cobol'"), language.getCause().getMessage());
        ExecutionException limits = assertThrows(ExecutionException.class, () -> Await.result(sandboxes.createSandbox()
                .addHeader("authorization", bearer(TestNode.BOB)).invoke(CreateSandboxRequest.newBuilder().setLanguage("bash")
                        .setLimits(Limits.newBuilder().setTimeoutSeconds(-1)).build())));
        assertEquals(Status.Code.INVALID_ARGUMENT, codeOf(limits));
        assertTrue(limits.getCause().getMessage().contains("limits.timeoutSeconds must be positive; got -1.0"),
                limits.getCause().getMessage());
        ExecutionException path = assertThrows(ExecutionException.class, () -> Await.result(sandboxes.readFile()
                .addHeader("authorization", bearer(TestNode.BOB)).invoke(FileRequest.newBuilder().setSandboxId("sbx-nope")
                        .setPath("a/../../x").build())));
        assertEquals(Status.Code.INVALID_ARGUMENT, codeOf(path));
        assertTrue(path.getCause().getMessage().contains("inside the workspace"), path.getCause().getMessage());
    }

    @Test
    void standardHealthService() throws Exception {
        HealthCheckResponse r = Await.result(health.check(HealthCheckRequest.newBuilder().setService("").build()));
        assertEquals(HealthCheckResponse.ServingStatus.SERVING, r.getStatus());
        HealthCheckResponse first = Await.result(health.watch(HealthCheckRequest.newBuilder().setService("agentexec.v1.ExecutionService").build())
                .take(1).runWith(Sink.head(), clientSystem));
        assertEquals(HealthCheckResponse.ServingStatus.SERVING, first.getStatus());
        ExecutionException unknown = assertThrows(ExecutionException.class, () -> Await.result(health.check(
                HealthCheckRequest.newBuilder().setService("no.such.Service").build())));
        assertEquals(Status.Code.NOT_FOUND, codeOf(unknown));
        assertTrue(Duration.ofSeconds(1).toMillis() > 0);
    }
}
