package io.agentexec.gateway.service;

import io.agentexec.cluster.executors.ExecutorOptions;
import io.agentexec.cluster.executors.SeedExecutors;
import io.agentexec.cluster.port.ExecutionPort;
import io.agentexec.cluster.port.SandboxInfo;
import io.agentexec.gateway.logging.RequestLog;
import io.agentexec.gateway.service.RequestRules.SandboxForm;
import io.agentexec.gateway.service.RequestRules.SandboxSpec;
import io.agentexec.sandbox.model.InvalidRequestException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;

/**
 * A tenant's sandboxes (a workspace that persists between runs), for both transports: create, read, delete, and
 * files in and out. Ids and paths are checked here; another tenant's sandbox is simply not found (404).
 */
public final class Sandboxes {
    private static final Logger log = LoggerFactory.getLogger(Sandboxes.class);

    private final ExecutionPort port;
    private final RequestRules rules;
    private final Draining draining;
    private final long maxFileReadBytes;
    private final SeedExecutors executors;

    /** A sandbox as create and get answer it: what the port knows, and the executor options its runs default to. */
    public record Described(SandboxInfo info, ExecutorOptions defaults) {
    }

    Sandboxes(ExecutionPort port, RequestRules rules, Draining draining, long maxFileReadBytes, SeedExecutors executors) {
        this.port = port;
        this.rules = rules;
        this.draining = draining;
        this.maxFileReadBytes = maxFileReadBytes;
        this.executors = executors;
    }

    /**
     * Creates the sandbox a transport reads into a form; 429 when the tenant holds its maximum. Executor options given
     * with it (policy, retries, cache, executor, profile) are kept first, so that no run of the sandbox can go without
     * them; a creation that fails after leaves them to a sandbox that never exists.
     */
    public CompletionStage<Described> create(Requester who, Consumer<SandboxForm> read) {
        draining.refuseNewWork();
        SandboxForm form = rules.sandbox(who.tenant().policy());
        read.accept(form);
        SandboxSpec spec = form.build();
        String id = RequestRules.newSandboxId();
        CompletionStage<Void> kept;
        try {
            kept = executors.keepSandboxDefaults(who.tenant().caller(), id, spec.options());
        } catch (InvalidRequestException e) {
            throw ApiException.badRequest(e.getMessage());
        }
        return kept.thenCompose(done -> port.createSandbox(who.tenant().caller(), id, spec.toCluster())).thenApply(info -> {
            RequestLog.info(log, who.logIds(), "sandbox {} created ({}{})", info.sandboxId(), info.language(),
                    spec.options().isEmpty() ? "" : ", with executor defaults");
            return new Described(info, spec.options());
        });
    }

    public CompletionStage<Described> get(Requester who, String id) {
        RequestRules.sandboxId(id);
        return port.sandbox(who.tenant().caller(), id).thenCompose(found -> {
            SandboxInfo info = known(found, id);
            return executors.sandboxDefaults(who.tenant().caller(), id).thenApply(d -> new Described(info, d));
        });
    }

    /** The executor options the caller's sandbox {@code id} was created with (none for an unknown sandbox). */
    CompletionStage<ExecutorOptions> defaults(Requester who, String id) {
        return executors.sandboxDefaults(who.tenant().caller(), id);
    }

    /** Deletes it; the port gives its quota slot back before it answers, so a create that follows is counted right. */
    public CompletionStage<SandboxInfo> delete(Requester who, String id) {
        RequestRules.sandboxId(id);
        return port.deleteSandbox(who.tenant().caller(), id).thenApply(found -> {
            SandboxInfo info = known(found, id);
            RequestLog.info(log, who.logIds(), "sandbox {} deleted", id);
            return info;
        });
    }

    /** Writes a workspace file; answers its size. */
    public CompletionStage<Long> writeFile(Requester who, String id, String path, byte[] content) {
        RequestRules.sandboxId(id);
        RequestRules.workspacePath(path);
        return port.writeFile(who.tenant().caller(), id, path, content).thenApply(written -> known(written, id));
    }

    /** Reads a workspace file of at most {@code agentexec.gateway.http.max-file-read-bytes}. */
    public CompletionStage<byte[]> readFile(Requester who, String id, String path) {
        RequestRules.sandboxId(id);
        RequestRules.workspacePath(path);
        return port.readFile(who.tenant().caller(), id, path, maxFileReadBytes).thenApply(content -> known(content, id));
    }

    private static <T> T known(Optional<T> answer, String id) {
        return answer.orElseThrow(() -> ApiException.notFound("no sandbox " + id));
    }
}
