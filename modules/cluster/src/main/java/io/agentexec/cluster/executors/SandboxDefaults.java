package io.agentexec.cluster.executors;

import java.util.Optional;
import java.util.concurrent.CompletionStage;

/**
 * The executor options a sandbox was created with: the defaults of every run in it (a run's own options win, field by
 * field, {@link ExecutorOptions#overriddenBy}). Kept cluster-wide in the journal ({@link ClusterSandboxDefaults}) or in
 * this JVM's memory ({@link LocalSandboxDefaults}, the engine-only node). They never change after the creation, so a
 * node may keep what it read.
 */
public interface SandboxDefaults {

    /** Keeps {@code options} (none said: nothing is stored) as the defaults of the tenant's sandbox. */
    CompletionStage<Void> keep(Optional<String> tenant, String sandboxId, ExecutorOptions options);

    /** The tenant's sandbox's defaults; {@link ExecutorOptions#none()} when it was created without any (or is unknown). */
    CompletionStage<ExecutorOptions> of(Optional<String> tenant, String sandboxId);
}
