package io.agentexec.cluster.port.quota;

import java.util.concurrent.CompletionStage;

/**
 * Where a tenant's live sandboxes are counted against its quota: in this node alone (the engine
 * backend) or across every gateway node of the cluster. A slot is taken under the sandbox's id before
 * it is created and given back when it is deleted (or the create failed).
 */
public interface SandboxQuota {

    /** Whether the slot was taken; {@code held} counts the tenant's slots, this one included when granted. */
    sealed interface Decision {
        int held();
    }

    record Granted(int held) implements Decision {
    }

    record Refused(int held) implements Decision {
    }

    /** Takes a slot for {@code sandboxId} unless the tenant already holds {@code maxLive}; idempotent per id. */
    CompletionStage<Decision> reserve(String tenant, String sandboxId, int maxLive);

    /** Gives the slot of {@code sandboxId} back; releasing one not held changes nothing. */
    CompletionStage<Void> release(String tenant, String sandboxId);

    /**
     * Counts a sandbox again that holds a container again after its slot was freed (it expired, then ran again);
     * fire and forget. Where slots never expire (this JVM alone) there is nothing to do.
     */
    default void readmit(String tenant, String sandboxId) {
    }
}
