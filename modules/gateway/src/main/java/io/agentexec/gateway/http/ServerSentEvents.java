package io.agentexec.gateway.http;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.function.Function;
import org.apache.pekko.NotUsed;
import org.apache.pekko.http.javadsl.model.ContentType;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.MediaTypes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.japi.Pair;
import org.apache.pekko.stream.BoundedSourceQueue;
import org.apache.pekko.stream.Materializer;
import org.apache.pekko.stream.javadsl.Source;
import org.apache.pekko.util.ByteString;

/** Server-Sent Events (text/event-stream): the HTTP API's way to follow an execution or a conversation. */
final class ServerSentEvents {
    private static final ContentType EVENT_STREAM = ContentTypes.create(MediaTypes.TEXT_EVENT_STREAM);
    /** Events held for a slow client; a client further behind loses the newest (followers are best-effort). */
    private static final int BUFFER = 4096;

    /** Where a subscription delivers: one event each (id, type, JSON data), then the end. */
    interface Sink {
        void event(long id, String type, JsonNode data);

        void end();
    }

    private ServerSentEvents() {
    }

    /**
     * A text/event-stream response fed by {@code subscribe}, with a comment every {@code keepAlive} so that proxies
     * keep it open; the subscription closes when the client leaves.
     */
    static HttpResponse response(Materializer materializer, Duration keepAlive, Function<Sink, AutoCloseable> subscribe) {
        Pair<BoundedSourceQueue<ByteString>, Source<ByteString, NotUsed>> pair =
                Source.<ByteString>queue(BUFFER).preMaterialize(materializer);
        BoundedSourceQueue<ByteString> queue = pair.first();
        Sink sink = new Sink() {
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
                .keepAlive(keepAlive, () -> ByteString.fromString(": keep-alive\n\n"))
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
}
