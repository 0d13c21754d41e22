package io.agentexec.sandbox.model;

import java.nio.charset.StandardCharsets;
import java.util.Objects;

/** A file to place in the workspace before the blocks run; the path is relative to the workspace. */
public record WorkspaceFile(String path, byte[] content) {
    public WorkspaceFile {
        Objects.requireNonNull(path, "path");
        content = Objects.requireNonNull(content, "content").clone();
    }

    public static WorkspaceFile text(String path, String content) {
        return new WorkspaceFile(path, content.getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public byte[] content() {
        return content.clone();
    }
}
