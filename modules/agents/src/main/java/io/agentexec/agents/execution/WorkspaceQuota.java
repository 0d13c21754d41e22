package io.agentexec.agents.execution;

import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * The tenants' live-sandbox quota, as a chat's code meets it: each sandbox a chat's workspace opens for a
 * tenant takes one of that tenant's slots, like a sandbox made over HTTP, and gives it back when the chat
 * ends. The node that hosts the gateway supplies it (it knows the tenants and their maxima).
 */
public interface WorkspaceQuota {

    /** Takes a slot of {@code tenant} for {@code sandboxId} (idempotent); completes with a refusal message, if refused. */
    CompletionStage<Optional<String>> reserve(String tenant, String sandboxId);

    /** Gives the slot back; never fails (a slot not released is freed when the quota next finds its sandbox closed). */
    CompletionStage<Void> release(String tenant, String sandboxId);

    /** No quota: in-process chats with no tenants (the CLI's chat, tests). */
    WorkspaceQuota UNLIMITED = new WorkspaceQuota() {
        @Override
        public CompletionStage<Optional<String>> reserve(String tenant, String sandboxId) {
            return CompletableFuture.completedFuture(Optional.empty());
        }

        @Override
        public CompletionStage<Void> release(String tenant, String sandboxId) {
            return CompletableFuture.completedFuture(null);
        }
    };
}
