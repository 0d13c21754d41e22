package io.agentexec.gateway.http;

import org.apache.pekko.http.scaladsl.model.EntityStreamSizeException;
import org.apache.pekko.stream.Attributes;
import org.apache.pekko.stream.FlowShape;
import org.apache.pekko.stream.Inlet;
import org.apache.pekko.stream.Outlet;
import org.apache.pekko.stream.stage.AbstractInHandler;
import org.apache.pekko.stream.stage.AbstractOutHandler;
import org.apache.pekko.stream.stage.GraphStage;
import org.apache.pekko.stream.stage.GraphStageLogic;
import org.apache.pekko.util.ByteString;
import scala.Option;

/**
 * A request body of at most {@code maxBytes}: past it the reader gets an
 * {@link EntityStreamSizeException} (the gateway answers RESOURCE_EXHAUSTED), and the rest of the body
 * is read and dropped rather than refused. On HTTP/2 refusing it would reset the stream before the
 * answer and the client would read CANCELLED instead of why; the connection's body timeout still
 * bounds how long the client may go on sending.
 */
public final class BodyLimit extends GraphStage<FlowShape<ByteString, ByteString>> {
    private final Inlet<ByteString> in = Inlet.create("BodyLimit.in");
    private final Outlet<ByteString> out = Outlet.create("BodyLimit.out");
    private final FlowShape<ByteString, ByteString> shape = FlowShape.of(in, out);
    private final long maxBytes;

    public BodyLimit(long maxBytes) {
        this.maxBytes = maxBytes;
    }

    @Override
    public FlowShape<ByteString, ByteString> shape() {
        return shape;
    }

    @Override
    public GraphStageLogic createLogic(Attributes inheritedAttributes) {
        return new GraphStageLogic(shape) {
            private long seen;
            private boolean over;

            {
                setHandler(in, new AbstractInHandler() {
                    @Override
                    public void onPush() {
                        ByteString bytes = grab(in);
                        if (over) {
                            pull(in); // dropped: the reader already knows
                            return;
                        }
                        seen += bytes.size();
                        if (seen > maxBytes) {
                            over = true;
                            fail(out, new EntityStreamSizeException(maxBytes, Option.apply(seen)));
                            pull(in);
                            return;
                        }
                        push(out, bytes);
                    }

                    @Override
                    public void onUpstreamFinish() {
                        if (over) {
                            completeStage();
                        } else {
                            complete(out);
                        }
                    }
                });
                setHandler(out, new AbstractOutHandler() {
                    @Override
                    public void onPull() {
                        pull(in);
                    }

                    @Override
                    public void onDownstreamFinish(Throwable cause) {
                        if (!over) {
                            cancel(in, cause);
                        }
                    }
                });
            }
        };
    }
}
