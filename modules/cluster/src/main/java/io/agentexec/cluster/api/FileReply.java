package io.agentexec.cluster.api;

import com.fasterxml.jackson.annotation.JsonSubTypes;
import com.fasterxml.jackson.annotation.JsonTypeInfo;
import io.agentexec.cluster.CborSerializable;
import java.util.Objects;

/** What a worker (through the sandbox's entity) answers to a file operation; the facade turns failures into exceptions. */
@JsonTypeInfo(use = JsonTypeInfo.Id.NAME, property = "type")
@JsonSubTypes({
        @JsonSubTypes.Type(value = FileReply.Written.class, name = "written"),
        @JsonSubTypes.Type(value = FileReply.Content.class, name = "content"),
        @JsonSubTypes.Type(value = FileReply.Invalid.class, name = "invalid"),
        @JsonSubTypes.Type(value = FileReply.Failed.class, name = "failed")})
public sealed interface FileReply extends CborSerializable {

    record Written(String path, int bytes) implements FileReply {
    }

    record Content(String path, byte[] data) implements FileReply {
    }

    /** The request itself is wrong (a path that leaves the workspace or passes a symlink). */
    record Invalid(String message) implements FileReply {
    }

    record Failed(SandboxFileException.Kind kind, String message) implements FileReply {
        public Failed {
            Objects.requireNonNull(kind, "kind");
            Objects.requireNonNull(message, "message");
        }
    }
}
