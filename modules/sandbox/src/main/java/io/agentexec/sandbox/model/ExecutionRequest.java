package io.agentexec.sandbox.model;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * What to run: code blocks in order (AG2 stops at the first that fails), the limits, an explicit
 * environment (nothing of the host's leaks in), stdin for every block, and files to place first.
 *
 * @param image run in this image instead of the first block's language default (Docker only)
 */
public record ExecutionRequest(
        List<CodeBlock> blocks,
        Limits limits,
        Map<String, String> environment,
        byte[] stdin,
        List<WorkspaceFile> files,
        Optional<String> image) {

    public ExecutionRequest {
        blocks = List.copyOf(Objects.requireNonNull(blocks, "blocks"));
        Objects.requireNonNull(limits, "limits");
        environment = Map.copyOf(Objects.requireNonNull(environment, "environment"));
        stdin = Objects.requireNonNull(stdin, "stdin").clone();
        files = List.copyOf(Objects.requireNonNull(files, "files"));
        Objects.requireNonNull(image, "image");
        if (blocks.isEmpty() && files.isEmpty()) {
            throw new InvalidRequestException("a request needs at least one code block or file");
        }
        for (String key : environment.keySet()) {
            if (key.isEmpty() || key.contains("=") || key.indexOf('\0') >= 0) {
                throw new InvalidRequestException("environment variable name is invalid: '" + key + "'");
            }
        }
        for (String value : environment.values()) {
            if (value.indexOf('\0') >= 0) {
                throw new InvalidRequestException("environment variable values must not contain NUL");
            }
        }
    }

    @Override
    public byte[] stdin() {
        return stdin.clone();
    }

    public static Builder builder(Limits limits) {
        return new Builder(limits);
    }

    /** A convenience for the common case: one block, default everything else. */
    public static ExecutionRequest of(String language, String code, Limits limits) {
        return builder(limits).block(language, code).build();
    }

    public static final class Builder {
        private final List<CodeBlock> blocks = new java.util.ArrayList<>();
        private final Map<String, String> environment = new java.util.LinkedHashMap<>();
        private final List<WorkspaceFile> files = new java.util.ArrayList<>();
        private Limits limits;
        private byte[] stdin = new byte[0];
        private Optional<String> image = Optional.empty();

        private Builder(Limits limits) {
            this.limits = Objects.requireNonNull(limits, "limits");
        }

        public Builder block(String language, String code) {
            blocks.add(new CodeBlock(language, code));
            return this;
        }

        public Builder blocks(List<CodeBlock> values) {
            blocks.addAll(values);
            return this;
        }

        public Builder limits(Limits value) {
            limits = Objects.requireNonNull(value, "limits");
            return this;
        }

        public Builder env(String name, String value) {
            environment.put(name, value);
            return this;
        }

        public Builder stdin(String text) {
            stdin = text.getBytes(StandardCharsets.UTF_8);
            return this;
        }

        public Builder stdin(byte[] bytes) {
            stdin = bytes.clone();
            return this;
        }

        public Builder file(WorkspaceFile file) {
            files.add(file);
            return this;
        }

        public Builder image(String value) {
            image = Optional.of(value);
            return this;
        }

        public ExecutionRequest build() {
            return new ExecutionRequest(blocks, limits, environment, stdin, files, image);
        }
    }
}
