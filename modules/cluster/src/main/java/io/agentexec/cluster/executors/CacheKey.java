package io.agentexec.cluster.executors;

import io.agentexec.sandbox.model.CodeBlock;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.WorkspaceFile;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Map;
import java.util.TreeMap;

/**
 * The cache key of a run (CachingExecutor's {@code get_cache_key}, SHA-256 rather than the seed's MD5): everything
 * that decides its result, namely the blocks' languages and code, stdin, files, environment, image and limits, and
 * the scope its caller names (where it runs: a one-off, a sandbox, an agent's image and run args).
 */
public final class CacheKey {
    private CacheKey() {
    }

    public static String of(String scope, ExecutionRequest request) {
        try {
            MessageDigest d = MessageDigest.getInstance("SHA-256");
            field(d, "scope", scope.getBytes(StandardCharsets.UTF_8));
            for (CodeBlock b : request.blocks()) {
                field(d, "language", b.language().getBytes(StandardCharsets.UTF_8));
                field(d, "code", b.code().getBytes(StandardCharsets.UTF_8));
            }
            field(d, "stdin", request.stdin());
            for (WorkspaceFile f : request.files()) {
                field(d, "file", f.path().getBytes(StandardCharsets.UTF_8));
                field(d, "content", f.content());
            }
            for (Map.Entry<String, String> e : new TreeMap<>(request.environment()).entrySet()) {
                field(d, "env", (e.getKey() + "=" + e.getValue()).getBytes(StandardCharsets.UTF_8));
            }
            field(d, "image", request.image().orElse("").getBytes(StandardCharsets.UTF_8));
            field(d, "limits", request.limits().toString().getBytes(StandardCharsets.UTF_8));
            return HexFormat.of().formatHex(d.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /** Each field with its name and length first, so that no two different requests hash the same bytes. */
    private static void field(MessageDigest d, String name, byte[] value) {
        d.update(name.getBytes(StandardCharsets.US_ASCII));
        d.update((byte) 0);
        d.update(Long.toString(value.length).getBytes(StandardCharsets.US_ASCII));
        d.update((byte) 0);
        d.update(value);
    }
}
