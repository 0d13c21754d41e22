package io.agentexec.gateway.spi;

import io.agentexec.sandbox.model.Limits;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CompletionStage;

/** A tenant's long-lived sandboxes (AG2's per-agent working directory). Ids are scoped to the tenant. */
public interface SandboxService {

    record SandboxInfo(String sandboxId, String language, String status) {
        public SandboxInfo {
            Objects.requireNonNull(sandboxId, "sandboxId");
            Objects.requireNonNull(language, "language");
            Objects.requireNonNull(status, "status");
        }
    }

    /** A new sandbox id; the caller takes its quota slot under this id before creating it. */
    static String newSandboxId() {
        return "sbx-" + UUID.randomUUID();
    }

    /**
     * Creates the sandbox {@code sandboxId} (from {@link #newSandboxId()}). Fails with
     * {@link io.agentexec.sandbox.model.InvalidRequestException} for a request that cannot be met.
     */
    CompletionStage<SandboxInfo> create(TenantId tenant, String sandboxId, String language, Limits limits,
                                        Optional<String> image);

    /** Empty when the tenant has no such live sandbox. */
    CompletionStage<Optional<SandboxInfo>> find(TenantId tenant, String sandboxId);

    /** Empty when the tenant has no such live sandbox. */
    CompletionStage<Optional<SandboxInfo>> delete(TenantId tenant, String sandboxId);

    /** Empty when the tenant has no such live sandbox. The path is relative to the workspace. */
    CompletionStage<Optional<Long>> writeFile(TenantId tenant, String sandboxId, String path, byte[] content);

    /** Empty when the tenant has no such live sandbox. */
    CompletionStage<Optional<byte[]>> readFile(TenantId tenant, String sandboxId, String path, long maxBytes);
}
