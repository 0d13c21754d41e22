package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.typesafe.config.ConfigFactory;
import io.agentexec.gateway.grpc.v1.ConversationEvent;
import io.agentexec.gateway.grpc.v1.ConversationRef;
import io.agentexec.gateway.grpc.v1.ConversationServiceClient;
import io.agentexec.gateway.grpc.v1.HumanInput;
import io.agentexec.gateway.grpc.v1.StartConversationRequest;
import io.agentexec.gateway.grpc.v1.Transcript;
import io.agentexec.gateway.http.Json;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.grpc.GrpcClientSettings;
import org.apache.pekko.grpc.GrpcServiceException;
import org.apache.pekko.stream.javadsl.Sink;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import io.agentexec.testkit.FakeModel;
import io.agentexec.testkit.Await;

/**
 * The conversation service over gRPC (h2c on the node's port), against the same machinery as
 * {@link ConversationsApiTest}: the cluster backend on H2 in memory, the bundled replay model and a scripted
 * OpenAI-compatible server on loopback, code run in real Docker sandboxes.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class GrpcConversationsTest {
    private FakeModel model;
    private TestNode node;
    private ActorSystem<Void> clientSystem;
    private ConversationServiceClient conversations;

    @BeforeAll
    void start() throws Exception {
        model = new FakeModel("```python\nprint(6 * 7)\n```", "It printed 42.\nTERMINATE", "Shall I go on?");
        node = AssembledNodes.start("cluster", Map.of(
                "agentexec.cluster.persistence.url", "jdbc:h2:mem:grpc-conversations;DB_CLOSE_DELAY=-1;DATABASE_TO_UPPER=false",
                "pekko.remote.artery.canonical.port", 0,
                "agentexec.agents.llm.base-url", model.baseUrl(),
                "agentexec.agents.llm.api-key-env", ""));
        clientSystem = ActorSystem.create(Behaviors.empty(), "grpc-conversations-client",
                ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
        conversations = ConversationServiceClient.create(
                GrpcClientSettings.connectToServiceAt("127.0.0.1", node.gateway.grpcPort(), clientSystem).withTls(false),
                clientSystem);
    }

    @AfterAll
    void stop() {
        if (conversations != null) {
            conversations.close();
        }
        if (clientSystem != null) {
            clientSystem.terminate();
        }
        if (node != null) {
            node.close();
        }
        if (model != null) {
            model.close();
        }
    }

    private static Status statusOf(ExecutionException e) {
        Throwable c = e.getCause();
        if (c instanceof StatusRuntimeException s) {
            return s.getStatus();
        }
        if (c instanceof GrpcServiceException g) {
            return g.getStatus();
        }
        throw new AssertionError("not a gRPC status: " + c, c);
    }

    private Transcript start(String key, String config, String message) throws Exception {
        return Await.result(conversations.startConversation().addHeader("authorization", "Bearer " + key)
                .invoke(StartConversationRequest.newBuilder().setConfigJson(config).setMessage(message).build()));
    }

    private Transcript transcript(String key, String id) throws Exception {
        return Await.result(conversations.getTranscript().addHeader("authorization", "Bearer " + key)
                .invoke(ConversationRef.newBuilder().setConversationId(id).build()));
    }

    private Transcript awaitStatus(String id, String status) throws Exception {
        Transcript t = null;
        for (int i = 0; i < 1200; i++) {
            t = transcript(TestNode.ALICE, id);
            if (t.getStatus().equals(status)) {
                return t;
            }
            Thread.sleep(100);
        }
        throw new AssertionError("conversation " + id + " never reached " + status + ": " + t);
    }

    private static List<String> contents(List<ConversationEvent> events) throws Exception {
        List<String> out = new ArrayList<>();
        for (ConversationEvent e : events) {
            if (e.getType().equals("message-sent")) {
                JsonNode body = Json.MAPPER.readTree(e.getJson());
                out.add(body.get("message").get("content").asText());
            }
        }
        return out;
    }

    @Test
    void aConversationStreamsItsEventsLiveUntilItEnds() throws Exception {
        Transcript started = start(TestNode.ALICE, ConversationsApiTest.config("replay-median", "NEVER"), "Write a median function");
        String id = started.getConversationId();
        assertTrue(id.startsWith("conv-"), id);

        // followed from its start: every event once, in order, and the stream completes when the chat ends
        List<ConversationEvent> streamed = Await.result(conversations.streamEvents().addHeader("authorization", "Bearer " + TestNode.ALICE)
                .invoke(ConversationRef.newBuilder().setConversationId(id).build())
                .runWith(Sink.seq(), clientSystem));
        for (int i = 0; i < streamed.size(); i++) {
            assertEquals(i + 1, streamed.get(i).getSequence(), "sequence of " + streamed);
            assertEquals(id, streamed.get(i).getConversationId());
        }
        assertEquals("chat-started", streamed.get(0).getType());
        assertEquals("terminated", streamed.get(streamed.size() - 1).getType());

        Transcript ended = awaitStatus(id, "ended");
        assertEquals(ended.getEventsList(), streamed, "the stream and the transcript hold the same events");
        List<String> messages = contents(ended.getEventsList());
        assertEquals("Write a median function", messages.get(0));
        assertTrue(messages.get(2).startsWith("exitcode: 0 (execution succeeded)\nCode output: odd: 2\neven: 2.5\n"),
                messages.get(2));

        // nothing of the operator's set-up: the replay script's host path, endpoint fields
        for (ConversationEvent e : streamed) {
            assertFalse(e.getJson().contains(io.agentexec.agents.ModelCatalog.bundledMedianReplay().toString()), e.getJson());
            assertFalse(e.getJson().contains("replayScript") || e.getJson().contains("baseUrl"), e.getJson());
        }

        // another tenant sees nothing of it
        ExecutionException other = assertThrows(ExecutionException.class, () -> transcript(TestNode.BOB, id));
        assertEquals(Status.Code.NOT_FOUND, statusOf(other).getCode());
        ExecutionException otherStream = assertThrows(ExecutionException.class, () -> Await.result(conversations.streamEvents()
                .addHeader("authorization", "Bearer " + TestNode.BOB)
                .invoke(ConversationRef.newBuilder().setConversationId(id).build()).runWith(Sink.seq(), clientSystem)));
        assertEquals(Status.Code.NOT_FOUND, statusOf(otherStream).getCode());
    }

    @Test
    void aHumanAnswersOverGrpc() throws Exception {
        String id = start(TestNode.ALICE, ConversationsApiTest.config("default", "TERMINATE"), "Print six times seven").getConversationId();
        Transcript waiting = awaitStatus(id, "awaiting_human");
        List<String> messages = contents(waiting.getEventsList());
        assertEquals("exitcode: 0 (execution succeeded)\nCode output: 42\n", messages.get(2));

        Transcript answered = Await.result(conversations.postHumanInput().addHeader("authorization", "Bearer " + TestNode.ALICE)
                .invoke(HumanInput.newBuilder().setConversationId(id).setText("exit").build()));
        assertEquals(id, answered.getConversationId());
        Transcript ended = awaitStatus(id, "ended");
        assertTrue(ended.getEventsList().stream().anyMatch(e -> e.getJson().contains("typed exit")), ended.toString());
        assertFalse(ended.toString().contains(model.baseUrl()), "the operator's endpoint is shown: " + ended);

        ExecutionException late = assertThrows(ExecutionException.class, () -> Await.result(conversations.postHumanInput()
                .addHeader("authorization", "Bearer " + TestNode.ALICE)
                .invoke(HumanInput.newBuilder().setConversationId(id).setText("more").build())));
        assertEquals(Status.Code.INVALID_ARGUMENT, statusOf(late).getCode());
        assertTrue(statusOf(late).getDescription().contains("not waiting for human input"), statusOf(late).getDescription());
    }

    @Test
    void badInputIsAStatusThatSaysWhy() throws Exception {
        record Case(String config, Status.Code code, String says) { }
        List<Case> cases = List.of(
                new Case(ConversationsApiTest.config("no-such-model", "NEVER"), Status.Code.INVALID_ARGUMENT, "no model 'no-such-model'"),
                new Case("{\"assistant\": {}, \"user_proxy\": {}, \"colour\": 1}", Status.Code.INVALID_ARGUMENT, "unknown key 'colour'"),
                new Case(ConversationsApiTest.config("replay-median", "NEVER").replace("\"use_docker\": true",
                        "\"use_docker\": true, \"docker_run_args\": [\"--privileged\"]"), Status.Code.INVALID_ARGUMENT, "--privileged"),
                new Case("{not json", Status.Code.INVALID_ARGUMENT, "config_json is not valid JSON"));
        for (Case c : cases) {
            ExecutionException e = assertThrows(ExecutionException.class, () -> start(TestNode.ALICE, c.config(), "hi"), c.config());
            assertEquals(c.code(), statusOf(e).getCode(), c.config());
            assertTrue(statusOf(e).getDescription().contains(c.says()), c.says() + " not in " + statusOf(e).getDescription());
        }
        ExecutionException unknown = assertThrows(ExecutionException.class, () -> transcript(TestNode.ALICE, "conv-unknown"));
        assertEquals(Status.Code.NOT_FOUND, statusOf(unknown).getCode());
        ExecutionException unauthenticated = assertThrows(ExecutionException.class, () -> Await.result(conversations.getTranscript()
                .invoke(ConversationRef.newBuilder().setConversationId("conv-unknown").build())));
        assertEquals(Status.Code.UNAUTHENTICATED, statusOf(unauthenticated).getCode());
    }
}
