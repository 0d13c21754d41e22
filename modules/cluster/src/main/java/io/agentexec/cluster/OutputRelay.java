package io.agentexec.cluster;

import io.agentexec.cluster.api.OutputChunk;
import java.util.function.Consumer;
import org.apache.pekko.actor.typed.Behavior;
import org.apache.pekko.actor.typed.javadsl.Behaviors;

/**
 * The caller's end of an output stream: lives on the caller's node, receives chunks from the worker
 * (wherever it is) into a bounded mailbox that drops when full, and hands them to the caller's
 * consumer on its own thread. Stopped when the execution's reply arrives.
 */
final class OutputRelay {
    /** Ends the relay; a message of its own so that it never mixes with chunks. */
    enum Stop { INSTANCE }

    private OutputRelay() {
    }

    static Behavior<Object> create(Consumer<OutputChunk> consumer) {
        return Behaviors.setup(ctx -> Behaviors.receive(Object.class)
                .onMessage(OutputChunk.class, chunk -> {
                    try {
                        consumer.accept(chunk);
                    } catch (RuntimeException e) {
                        // The caller's consumer is not ours to fail: the execution goes on, the stream too.
                        ctx.getLog().warn("an output consumer of {} failed: {}", chunk.executionKey(), e.toString());
                    }
                    return Behaviors.same();
                })
                .onMessageEquals(Stop.INSTANCE, Behaviors::stopped)
                .build());
    }
}
