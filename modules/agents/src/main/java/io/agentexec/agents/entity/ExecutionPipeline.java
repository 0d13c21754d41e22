package io.agentexec.agents.entity;

import io.agentexec.agents.AgentDefinition;
import io.agentexec.agents.ExecutionRecord;
import io.agentexec.agents.execution.ExecutionPlanner;
import io.agentexec.agents.execution.WorkspaceExecutions;
import io.agentexec.cluster.api.TenantScope;
import io.agentexec.sandbox.model.CodeBlock;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.FileWritten;
import io.agentexec.sandbox.model.Verdict;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import org.apache.pekko.Done;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;

/**
 * One execution by an agent, the seed's executor subclasses in one pass: the forbidden patterns
 * (SecureCodeExecutor), the result cache (CachingExecutor, never for SANDBOX_ERROR), the resource
 * profile (OptimizedExecutor), the sandbox, and the agent's statistics.
 */
public final class ExecutionPipeline {
    public static final String CACHED_PREFIX = "[CACHED RESULT]\n";

    /** @param content what the agent says: AG2's {@code exitcode: N (...)\nCode output: ...}, marked when cached */
    public record Outcome(ExecutionRecord record, String content) {
    }

    private final ExecutionPlanner planner;
    private final WorkspaceExecutions executions;
    private final ClusterSharding sharding;
    private final Duration askTimeout;

    public ExecutionPipeline(ExecutionPlanner planner, WorkspaceExecutions executions, ClusterSharding sharding,
                             Duration askTimeout) {
        this.planner = planner;
        this.executions = executions;
        this.sharding = sharding;
        this.askTimeout = askTimeout;
    }

    /**
     * @param owner        the chat (or direct-call scope) whose workspace the code runs in
     * @param executionKey idempotency key of this execution
     */
    public CompletionStage<Outcome> run(AgentDefinition agent, String owner, String executionKey,
                                        List<CodeBlock> blocks, String profile) {
        Optional<String> violation = planner.violation(agent, blocks);
        if (violation.isPresent()) {
            ExecutionResult refused = ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1,
                    "Potentially unsafe code detected: " + violation.get(), "policy");
            return record(agent, owner, executionKey, profile, refused, Optional.empty());
        }
        ExecutionPlanner.Plan plan = planner.plan(agent, owner, executionKey, blocks, profile);
        boolean caching = agent.executorOptions().cacheResults();
        CompletionStage<Optional<CachedResult>> cached = caching
                ? agentRef(owner, agent.name()).<AgentEntity.CacheAnswer>ask(r -> new AgentEntity.LookupCache(plan.cacheKey(), r),
                askTimeout).thenApply(AgentEntity.CacheAnswer::result)
                : CompletableFuture.completedFuture(Optional.empty());
        return cached.thenCompose(hit -> {
            if (hit.isPresent()) {
                CachedResult c = hit.get();
                ExecutionRecord record = new ExecutionRecord(executionKey, agent.name(), c.verdict(), c.exitCode(),
                        c.output(), 0, plan.profile(), true, c.filesWritten(), c.backend(), Instant.now());
                return recordSample(owner, record, Optional.empty())
                        .thenApply(d -> new Outcome(record, CACHED_PREFIX + c.ag2Reply()));
            }
            return executions.execute(plan.call())
                    .thenCompose(result -> record(agent, owner, executionKey, plan.profile(), result,
                            caching ? Optional.of(plan.cacheKey()) : Optional.empty()));
        });
    }

    /**
     * The chat {@code owner} is over: the workspaces of its agents that execute code go (their
     * sandboxes are closed and their containers removed). Idempotent; never blocks.
     */
    public void release(String owner, java.util.Collection<AgentDefinition> agents) {
        for (AgentDefinition agent : agents) {
            agent.codeExecution().ifPresent(config ->
                    executions.release(ExecutionPlanner.sandboxKey(owner, agent.name(), config)));
        }
    }

    /** A result for an execution that failed outside the sandbox (an exception on the way). */
    public static Outcome failed(AgentDefinition agent, String executionKey, String profile, String reason) {
        return outcome(agent, executionKey, profile,
                ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, "execution failed: " + reason, "none"));
    }

    private CompletionStage<Outcome> record(AgentDefinition agent, String owner, String executionKey, String profile,
                                            ExecutionResult result, Optional<String> cacheKey) {
        Outcome outcome = outcome(agent, executionKey, profile, result);
        Optional<CachedResult> entry = cacheKey.filter(k -> result.verdict() != Verdict.SANDBOX_ERROR)
                .map(k -> new CachedResult(k, result.verdict(), result.exitCode(), result.output(), result.ag2Reply(),
                        outcome.record().filesWritten(), result.backend(), result.wallTimeMs()));
        return recordSample(owner, outcome.record(), entry).thenApply(d -> outcome);
    }

    private static Outcome outcome(AgentDefinition agent, String executionKey, String profile, ExecutionResult result) {
        ExecutionRecord record = new ExecutionRecord(executionKey, agent.name(), result.verdict(), result.exitCode(),
                result.output(), result.wallTimeMs(), profile, false,
                result.filesWritten().stream().map(FileWritten::path).toList(), result.backend(), Instant.now());
        return new Outcome(record, result.ag2Reply());
    }

    private CompletionStage<Done> recordSample(String owner, ExecutionRecord record, Optional<CachedResult> entry) {
        AgentEntity.ExecutionSample sample = new AgentEntity.ExecutionSample(record.profile(),
                record.verdict() == Verdict.OK, record.wallTimeMs(), record.cached(), Instant.now());
        // statistics are bookkeeping: a chat never fails because they could not be written
        return agentRef(owner, record.agent()).<Done>ask(r -> new AgentEntity.RecordExecution(sample, entry, r), askTimeout)
                .exceptionally(e -> Done.getInstance());
    }

    /**
     * The agent's entity, scoped to the tenant of the chat that runs it: two tenants naming their proxy
     * {@code code_executor} have two agents, with their own statistics and cache.
     */
    private EntityRef<AgentEntity.Command> agentRef(String owner, String name) {
        return sharding.entityRefFor(AgentEntity.TYPE_KEY, AgentEntity.entityId(TenantScope.tenantOf(owner), name));
    }
}
