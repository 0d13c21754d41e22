package io.agentexec.gateway.service;

import io.agentexec.cluster.port.ExecutionPort;
import io.agentexec.cluster.port.SandboxInfo;
import io.agentexec.gateway.logging.RequestLog;
import io.agentexec.gateway.service.RequestRules.SandboxForm;
import io.agentexec.gateway.service.RequestRules.SandboxSpec;
import java.util.Optional;
import java.util.concurrent.CompletionStage;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

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

    Sandboxes(ExecutionPort port, RequestRules rules, Draining draining, long maxFileReadBytes) {
        this.port = port;
        this.rules = rules;
        this.draining = draining;
        this.maxFileReadBytes = maxFileReadBytes;
    }

    /** Creates the sandbox a transport reads into a form; 429 when the tenant holds its maximum. */
    public CompletionStage<SandboxInfo> create(Requester who, Consumer<SandboxForm> read) {
        draining.refuseNewWork();
        SandboxForm form = rules.sandbox(who.tenant().policy());
        read.accept(form);
        SandboxSpec spec = form.build();
        return port.createSandbox(who.tenant().caller(), RequestRules.newSandboxId(), spec.toCluster()).thenApply(info -> {
            RequestLog.info(log, who.logIds(), "sandbox {} created ({})", info.sandboxId(), info.language());
            return info;
        });
    }

    public CompletionStage<SandboxInfo> get(Requester who, String id) {
        RequestRules.sandboxId(id);
        return port.sandbox(who.tenant().caller(), id).thenApply(found -> known(found, id));
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
