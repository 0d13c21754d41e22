package io.agentexec.agents.entity;

import io.agentexec.agents.AgentDefinition;
import io.agentexec.agents.ExecutionRecord;
import io.agentexec.agents.execution.ExecutionCall;
import io.agentexec.agents.execution.ExecutionPlanner;
import io.agentexec.agents.execution.WorkspaceExecutions;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.executors.ExecutorOutcome;
import io.agentexec.cluster.executors.SeedExecutors;
import io.agentexec.cluster.executors.TestSuite;
import io.agentexec.cluster.port.Caller;
import io.agentexec.sandbox.model.CodeBlock;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.FileWritten;
import io.agentexec.sandbox.model.Verdict;
import java.time.Instant;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * One execution by an agent: its plan (profile, image, workspace), then the seed's executors as every caller has
 * them ({@link SeedExecutors}: the code policy, the tenant's cache, retries, tests, statistics), each run going
 * through the agent's workspace sandbox ({@link WorkspaceExecutions}).
 */
public final class ExecutionPipeline {
    /** The seed's mark on a cached answer (defined with the cache). */
    public static final String CACHED_PREFIX = SeedExecutors.CACHED_PREFIX;
    /** Statistics' name for code run by a chat, and for code run by a direct call of the Java API. */
    public static final String CHAT = "chat";
    public static final String JAVA = "java";

    /**
     * @param content what the agent says: AG2's {@code exitcode: N (...)\nCode output: ...}, marked when cached
     * @param tests   the per-case report, when the execution ran tests
     */
    public record Outcome(ExecutionRecord record, String content, Optional<io.agentexec.cluster.executors.TestReport> tests) {
        public Outcome(ExecutionRecord record, String content) {
            this(record, content, Optional.empty());
        }
    }

    private final ExecutionPlanner planner;
    private final WorkspaceExecutions executions;
    private final SeedExecutors executors;

    public ExecutionPipeline(ExecutionPlanner planner, WorkspaceExecutions executions, SeedExecutors executors) {
        this.planner = planner;
        this.executions = executions;
        this.executors = executors;
    }

    /**
     * @param owner        the chat (or direct-call scope) whose workspace the code runs in
     * @param executionKey idempotency key of this execution; its later attempts and test cases are {@code KEY~N}
     * @param source       {@link #CHAT} or {@link #JAVA}, for the statistics
     */
    public CompletionStage<Outcome> run(AgentDefinition agent, String owner, String executionKey,
                                        List<CodeBlock> blocks, String profile, String source,
                                        Optional<TestSuite> tests) {
        ExecutionPlanner.Plan plan = planner.plan(agent, owner, executionKey, blocks, profile);
        Optional<Caller> caller = executions.callerFor(plan.call().sandboxKey());
        if (caller.isEmpty()) {
            return CompletableFuture.completedFuture(outcome(agent, executionKey, profile,
                    ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1, "not run: the chat's tenant is not known (any more)",
                            "agents")));
        }
        // counted under the profile this run used (a call's complexity over the agent's own)
        io.agentexec.cluster.executors.ExecutorOptions options = agent.executorOptions().shared(agent.name(), executors)
                .withProfile(plan.profile());
        if (tests.isPresent()) {
            options = options.withTests(tests.get());
        }
        // what the operator's ceilings will bring down on the way to the port, said in the record
        List<String> notes = caller.get().policy().excesses(plan.call().request().limits()).stream()
                .map(excess -> "profile " + plan.profile() + " / code_execution_config: " + excess + "; held at the ceiling")
                .toList();
        // a tenant's chat counts in its tenant's statistics, also where its code runs as the node (no tenants)
        Optional<String> statsTenant = caller.get().tenant()
                .or(() -> io.agentexec.agents.execution.WorkspaceExecutions.tenantOf(plan.call().sandboxKey()));
        SeedExecutors.Call call = new SeedExecutors.Call(caller.get(), executionKey, plan.call().request(), options,
                plan.cacheScope(), source, notes, statsTenant);
        return executors.run(call, runner(plan.call())).thenApply(o -> outcome(agent, executionKey, plan.profile(), o));
    }

    public CompletionStage<Outcome> run(AgentDefinition agent, String owner, String executionKey,
                                        List<CodeBlock> blocks, String profile) {
        return run(agent, owner, executionKey, blocks, profile, CHAT, Optional.empty());
    }

    /** Each run through the agent's workspace: the first under the execution's key, later ones under {@code KEY~N}. */
    private SeedExecutors.Runner runner(ExecutionCall base) {
        return new SeedExecutors.Runner() {
            @Override
            public String executionId(int sequence) {
                return sequence == 1 ? base.executionKey() : base.executionKey() + "~" + sequence;
            }

            @Override
            public CompletionStage<ExecutionOutcome> run(int sequence, String executionId, ExecutionRequest request) {
                ExecutionCall call = new ExecutionCall(base.sandboxKey(), executionId, base.isolation(), base.image(),
                        base.containerName(), base.dockerRunArgs(), request);
                return executions.execute(call).thenApply(result -> new ExecutionOutcome.Completed(executionId, result,
                        List.of(), Optional.empty(), false));
            }
        };
    }

    /**
     * The chat {@code owner} is over and its workspaces go (their sandboxes are closed and their containers
     * removed). Idempotent; never blocks.
     */
    public void release(String owner, java.util.Collection<AgentDefinition> agents) {
        workspaces(owner, agents).forEach(executions::release);
    }

    /** The workspace keys of chat {@code owner}: one per agent that runs code. */
    public static List<String> workspaces(String owner, java.util.Collection<AgentDefinition> agents) {
        List<String> keys = new java.util.ArrayList<>();
        for (AgentDefinition agent : agents) {
            agent.codeExecution().ifPresent(config -> keys.add(ExecutionPlanner.sandboxKey(owner, agent.name(), config)));
        }
        return keys;
    }

    /** Closes these workspaces now (a deleted conversation's). Idempotent; never blocks. */
    public void releaseWorkspaces(List<String> keys) {
        keys.forEach(executions::release);
    }

    /** A file of one of these workspaces (the first that has it), at most {@code maxBytes}. */
    public java.util.concurrent.CompletionStage<Optional<byte[]>> readFile(List<String> keys, String path,
                                                                            long maxBytes) {
        java.util.concurrent.CompletionStage<Optional<byte[]>> answer =
                java.util.concurrent.CompletableFuture.completedFuture(Optional.empty());
        for (String key : keys) {
            answer = answer.thenCompose(found -> found.isPresent()
                    ? java.util.concurrent.CompletableFuture.completedFuture(found)
                    : executions.readFile(key, path, maxBytes));
        }
        return answer;
    }

    /** A result for an execution that failed outside the sandbox (an exception on the way). */
    public static Outcome failed(AgentDefinition agent, String executionKey, String profile, String reason) {
        return outcome(agent, executionKey, profile,
                ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, "execution failed: " + reason, "none"));
    }

    private static Outcome outcome(AgentDefinition agent, String executionKey, String profile, ExecutorOutcome o) {
        ExecutionResult result = o.outcome() instanceof ExecutionOutcome.Completed c ? c.result()
                : ExecutionResult.refused(Verdict.SANDBOX_ERROR, 1, "not run: " + o.outcome().status(), "agents");
        ExecutionRecord record = new ExecutionRecord(executionKey, agent.name(), result.verdict(), result.exitCode(),
                result.output(), result.wallTimeMs(), profile, o.cached(),
                result.filesWritten().stream().map(FileWritten::path).toList(), result.backend(), Instant.now(),
                o.attempts(), o.notes());
        return new Outcome(record, result.ag2Reply(), o.tests());
    }

    private static Outcome outcome(AgentDefinition agent, String executionKey, String profile, ExecutionResult result) {
        ExecutionRecord record = new ExecutionRecord(executionKey, agent.name(), result.verdict(), result.exitCode(),
                result.output(), result.wallTimeMs(), profile, false,
                result.filesWritten().stream().map(FileWritten::path).toList(), result.backend(), Instant.now());
        return new Outcome(record, result.ag2Reply());
    }
}
