package io.agentexec.cluster.api;

import io.agentexec.cluster.CborSerializable;
import io.agentexec.sandbox.agent.OutputListener;
import java.nio.charset.StandardCharsets;
import java.util.Objects;

/**
 * Output of a running execution, as it arrives: best-effort (see the module's README). The worker
 * never cuts a UTF-8 character in two, so {@link #text()} of each chunk is whole characters.
 *
 * @param sequence      0, 1, 2, ... per attempt: a retry on another worker starts again at 0
 * @param droppedBefore bytes the worker dropped just before this chunk because its buffer was full
 */
public record OutputChunk(String executionKey, long sequence, OutputListener.Stream stream, byte[] data,
                          long droppedBefore) implements CborSerializable {

    public OutputChunk {
        Objects.requireNonNull(executionKey, "executionKey");
        Objects.requireNonNull(stream, "stream");
        Objects.requireNonNull(data, "data");
    }

    /** The bytes as text; invalid UTF-8 (the user's own) becomes U+FFFD, as in the final result. */
    public String text() {
        return new String(data, StandardCharsets.UTF_8);
    }

    @Override
    public String toString() {
        return "OutputChunk[" + executionKey + " #" + sequence + " " + stream + " " + data.length + " bytes, "
                + droppedBefore + " dropped before]";
    }
}
