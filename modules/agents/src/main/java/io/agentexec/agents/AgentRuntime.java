package io.agentexec.agents;

import com.typesafe.config.Config;
import io.agentexec.agents.entity.AgentEntity;
import io.agentexec.agents.entity.ConversationDependencies;
import io.agentexec.agents.entity.ConversationEntity;
import io.agentexec.agents.entity.ExecutionPipeline;
import io.agentexec.cluster.executors.SeedExecutors;
import io.agentexec.cluster.executors.StatsReport;
import io.agentexec.cluster.executors.TestSuite;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.agents.execution.ExecutionPlanner;
import io.agentexec.agents.execution.WorkspaceExecutions;
import io.agentexec.agents.llm.LlmClients;
import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.NodeRole;
import io.agentexec.cluster.port.Caller;
import io.agentexec.cluster.port.Callers;
import io.agentexec.cluster.port.ClusterPort;
import io.agentexec.cluster.port.EnginePort;
import io.agentexec.cluster.port.ExecutionPort;
import io.agentexec.cluster.port.quota.LocalSandboxQuota;
import io.agentexec.sandbox.SandboxEngine;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.model.CodeBlock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.UnaryOperator;
import org.apache.pekko.Done;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.cluster.sharding.typed.javadsl.ClusterSharding;
import org.apache.pekko.cluster.sharding.typed.javadsl.Entity;
import org.apache.pekko.cluster.sharding.typed.javadsl.EntityRef;
import org.apache.pekko.pattern.StatusReply;
import org.apache.pekko.persistence.jdbc.query.javadsl.JdbcReadJournal;
import org.apache.pekko.persistence.query.EventEnvelope;
import org.apache.pekko.persistence.query.Offset;
import org.apache.pekko.persistence.query.PersistenceQuery;
import org.apache.pekko.stream.javadsl.Sink;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Agents and chats on an agentexec cluster node: the sharded agent and conversation entities, the
 * model clients and the way to run code (through the cluster). It is where an AG2 script's agents live:
 * <pre>
 * AgentRuntime runtime = AgentRuntime.start(ConfigFactory.load());
 * AssistantAgent assistant = runtime.assistantAgent("coding_assistant", systemMessage, llmConfig);
 * UserProxyAgent executor = runtime.userProxyAgent("code_executor", o -> o
 *         .humanInputMode(HumanInputMode.NEVER)
 *         .codeExecutionConfig(Map.of("work_dir", "python_workspace", "use_docker", true)));
 * ChatResult result = executor.initiateChat(assistant, "Write and test a Python function ...");
 * </pre>
 */
public final class AgentRuntime implements AutoCloseable {
    private static final Logger log = LoggerFactory.getLogger(AgentRuntime.class);
    /** How soon an in-process port asks whether a run is known to every node yet, doubling up to the max. */
    private static final java.time.Duration VISIBILITY_POLL_MIN = java.time.Duration.ofMillis(5);
    private static final java.time.Duration VISIBILITY_POLL_MAX = java.time.Duration.ofMillis(200);

    private final AgentexecCluster cluster;
    /** Started by {@link #start(Config)}: closing the runtime stops the node too. */
    private final boolean ownsCluster;
    private final ActorSystem<Void> system;
    private final ClusterSharding sharding;
    private final AgentsSettings settings;
    private final WorkspaceExecutions executions;
    /** A port this runtime made for itself (an in-process node's, or the unsafe-local engine's), closed with it. */
    private final Optional<ExecutionPort> ownPort;
    private final ExecutionPlanner planner;
    private final ExecutionPipeline pipeline;
    private final ExecutorService llmThreads;
    private final Optional<LlmConfig> defaultLlm;
    private final SeedExecutors executors;

    private AgentRuntime(AgentexecCluster cluster, boolean ownsCluster, AgentsSettings settings,
                         WorkspaceExecutions executions, Optional<ExecutionPort> ownPort, ExecutionPlanner planner,
                         ExecutorService llmThreads, Optional<LlmConfig> defaultLlm, SeedExecutors executors) {
        this.cluster = cluster;
        this.ownsCluster = ownsCluster;
        this.system = cluster.system();
        this.sharding = ClusterSharding.get(system);
        this.settings = settings;
        this.executions = executions;
        this.ownPort = ownPort;
        this.planner = planner;
        this.llmThreads = llmThreads;
        this.defaultLlm = defaultLlm;
        this.executors = executors;
        this.pipeline = new ExecutionPipeline(planner, executions, executors);
    }

    /**
     * The one-JVM convenience: starts an agentexec cluster node from {@code root} (journal, schema
     * migrations, self-join: the cluster module's start-up) and attaches to it. Closing the runtime
     * stops that node.
     */
    public static AgentRuntime start(Config root) {
        AgentexecCluster cluster = AgentexecCluster.start(root);
        try {
            return attach(cluster, root, true, Optional.empty(), nodeCallers(cluster), SeedExecutors.cluster(cluster, root));
        } catch (RuntimeException e) {
            cluster.close();
            throw e;
        }
    }

    /**
     * Hosts agents and chats on a running cluster node: same actor system, same journal; code runs through the
     * cluster's execution port, as the node itself (no tenants). Closing the runtime leaves the node running.
     */
    public static AgentRuntime attach(AgentexecCluster cluster, Config root) {
        return attach(cluster, root, false, Optional.empty(), nodeCallers(cluster), SeedExecutors.cluster(cluster, root));
    }

    /**
     * As {@link #attach(AgentexecCluster, Config)}, with code running through {@code port} on behalf of the chat's
     * tenant: a chat whose id is {@code TENANT.ID} is that tenant's ({@code callers} says what it may do).
     */
    public static AgentRuntime attach(AgentexecCluster cluster, Config root, ExecutionPort port, Callers callers) {
        return attach(cluster, root, port, callers, SeedExecutors.cluster(cluster, root));
    }

    /**
     * As {@link #attach(AgentexecCluster, Config, ExecutionPort, Callers)}, with the node's one set of seed executors
     * (shared with the gateway: one cache, one set of statistics and their listeners).
     */
    public static AgentRuntime attach(AgentexecCluster cluster, Config root, ExecutionPort port, Callers callers,
                                      SeedExecutors executors) {
        return attach(cluster, root, false, Optional.of(port), callers, executors);
    }

    /** Chats without tenants: every run is the node's own, under the node's policy. */
    private static Callers nodeCallers(AgentexecCluster cluster) {
        Caller node = Caller.node(cluster.policy().policy());
        return tenant -> Optional.of(node);
    }

    private static AgentRuntime attach(AgentexecCluster cluster, Config root, boolean ownsCluster,
                                       Optional<ExecutionPort> given, Callers callers, SeedExecutors executors) {
        AgentsSettings settings = AgentsSettings.fromConfig(root);
        EngineSettings engine = EngineSettings.fromConfig(root);
        // the operator's explicit unsafe-local setting sends every agent's code to the host, unsandboxed (development
        // only); else the port given, or the cluster's own
        Optional<ExecutionPort> own = settings.unsafeLocal()
                ? Optional.of(new EnginePort(SandboxEngine.start(engine.withBackend(EngineSettings.BackendChoice.UNSAFE_LOCAL)),
                        settings.executionThreads(), settings.executionThreads()))
                : given.isPresent() ? Optional.empty()
                : Optional.of(new ClusterPort(cluster, engine.languages(), settings.askTimeout(), new LocalSandboxQuota(),
                        VISIBILITY_POLL_MIN, VISIBILITY_POLL_MAX));
        ExecutionPort port = own.or(() -> given).orElseThrow();
        WorkspaceExecutions executions = new WorkspaceExecutions(port, callers,
                port instanceof ClusterPort ? Optional.of(cluster) : Optional.empty(), engine,
                Optional.of(root.getString("agentexec.agents.execution.default-image")).filter(i -> !i.isBlank()),
                root.getDuration("agentexec.agents.execution.overloaded-retry-for"));
        ExecutorService llmThreads = Executors.newFixedThreadPool(settings.llmThreads(), r -> {
            Thread t = new Thread(r, "agentexec-llm");
            t.setDaemon(true);
            return t;
        });
        ExecutionPlanner planner = ExecutionPlanner.fromConfig(root);
        AgentRuntime runtime = new AgentRuntime(cluster, ownsCluster, settings, executions, own, planner, llmThreads,
                LlmConfig.fromConfig(root), executors);
        runtime.initSharding();
        runtime.resumeOpenConversations();
        return runtime;
    }

    private void initSharding() {
        ConversationDependencies deps = new ConversationDependencies(new LlmClients(settings.llmRetry()), pipeline,
                llmThreads, settings.minBackoff(), settings.maxBackoff(), settings.workspaceRetention());
        // on the nodes that host the cluster's own entities: worker-only nodes keep only proxies
        String role = NodeRole.GATEWAY.roleName();
        sharding.init(Entity.of(AgentEntity.TYPE_KEY, ctx -> AgentEntity.create(ctx.getEntityId(), settings.agentLimits()))
                .withRole(role));
        sharding.init(Entity.of(ConversationEntity.TYPE_KEY, ctx -> ConversationEntity.create(ctx.getEntityId(), deps))
                .withRole(role));
    }

    /**
     * Wakes every chat that started and has not ended, so that chats cut off by a crash continue on
     * this node without anyone asking. The journal's tags say which those are.
     */
    private void resumeOpenConversations() {
        JdbcReadJournal journal = PersistenceQuery.get(system)
                .getReadJournalFor(JdbcReadJournal.class, JdbcReadJournal.Identifier());
        CompletionStage<List<String>> started = journal.currentEventsByTag(ConversationEntity.TAG_STARTED, Offset.noOffset())
                .map(EventEnvelope::persistenceId).runWith(Sink.seq(), system);
        CompletionStage<List<String>> ended = journal.currentEventsByTag(ConversationEntity.TAG_ENDED, Offset.noOffset())
                .map(EventEnvelope::persistenceId).runWith(Sink.seq(), system);
        started.thenCombine(ended, (s, e) -> {
            Set<String> open = new HashSet<>(s);
            open.removeAll(e);
            return open;
        }).whenComplete((open, error) -> {
            if (error != null) {
                log.error("cannot list unfinished conversations; they resume when next addressed", error);
                return;
            }
            String prefix = ConversationEntity.TYPE_KEY.name() + "|";
            for (String persistenceId : open) {
                String id = persistenceId.substring(prefix.length());
                log.info("resuming unfinished conversation {}", id);
                conversation(id).tell(new ConversationEntity.Wake());
            }
        });
    }

    public ActorSystem<Void> system() {
        return system;
    }

    /** How chats' code is run (their workspaces' files, their deletion). */
    ExecutionPipeline pipeline() {
        return pipeline;
    }

    /** The seed's executors this runtime's agents run their code through (profiles, policies, cache, statistics). */
    public SeedExecutors seedExecutors() {
        return executors;
    }

    /** The cluster node this runtime is attached to. */
    public AgentexecCluster cluster() {
        return cluster;
    }

    /** How code runs: the execution port (the host, unsandboxed, only under the operator's unsafe-local setting). */
    public WorkspaceExecutions executions() {
        return executions;
    }

    public AgentsSettings settings() {
        return settings;
    }

    /** The model configured in {@code agentexec.agents.llm}, if any. */
    public Optional<LlmConfig> defaultLlmConfig() {
        return defaultLlm;
    }

    // ---- agents ----

    public AssistantAgent assistantAgent(String name, String systemMessage, LlmConfig llmConfig) {
        return assistantAgent(name, Optional.of(systemMessage), llmConfig, o -> o);
    }

    /** An assistant with the default system message (write one code block per reply ... TERMINATE). */
    public AssistantAgent assistantAgent(String name, LlmConfig llmConfig) {
        return assistantAgent(name, Optional.empty(), llmConfig, o -> o);
    }

    public AssistantAgent assistantAgent(String name, Optional<String> systemMessage, LlmConfig llmConfig,
                                         UnaryOperator<AssistantAgent.Options> options) {
        AgentDefinition definition = AssistantAgent.define(name, systemMessage, llmConfig, options, settings);
        define(definition);
        return new AssistantAgent(definition, this);
    }

    public UserProxyAgent userProxyAgent(String name, UnaryOperator<UserProxyAgent.Options> options) {
        AgentDefinition definition = UserProxyAgent.define(name, options, settings, executors);
        define(definition);
        return new UserProxyAgent(definition, this);
    }

    private void define(AgentDefinition definition) {
        await(agent(definition.name()).<Done>askWithStatus(r -> new AgentEntity.Define(definition, r), settings.askTimeout()));
    }

    /** The statistics of agent {@code agentName}'s runs made through this runtime's direct calls and in-process chats. */
    public StatsReport executionStatistics(String agentName) {
        return await(executors.stats(nodeCaller(), Optional.of(agentName)));
    }

    private io.agentexec.cluster.port.Caller nodeCaller() {
        return executions.callerFor("direct").orElseThrow();
    }

    public List<AgentEntity.RetryAttempt> retryHistory(String agentName) {
        return await(agent(agentName).ask(AgentEntity.GetRetryHistory::new, settings.askTimeout())).attempts();
    }

    void recordRetryAttempt(String agentName, AgentEntity.RetryAttempt attempt) {
        await(agent(agentName).<Done>ask(r -> new AgentEntity.RecordRetryAttempt(attempt, r), settings.askTimeout()));
    }

    ExecutionPipeline.Outcome executeCode(UserProxyAgent agent, String language, String code, String profile) {
        if (agent.definition().codeExecution().isEmpty()) {
            throw new AgentConfigException(agent.name() + " has code_execution_config=False and cannot run code");
        }
        if (!planner.profiles().has(profile)) {
            throw new AgentConfigException("resource_profile: unknown profile '" + profile + "'; known: "
                    + String.join(", ", planner.profiles().names()));
        }
        return await(pipeline.run(agent.definition(), "direct", "direct#" + UUID.randomUUID(),
                List.of(new CodeBlock(language, code)), profile, ExecutionPipeline.JAVA, Optional.empty()));
    }

    TestRun runTests(UserProxyAgent agent, String language, String code, TestSuite tests) {
        if (agent.definition().codeExecution().isEmpty()) {
            throw new AgentConfigException(agent.name() + " has code_execution_config=False and cannot run code");
        }
        ExecutionPipeline.Outcome outcome;
        try {
            outcome = await(pipeline.run(agent.definition(), "direct", "direct#" + UUID.randomUUID(),
                    List.of(new CodeBlock(language, code)), agent.definition().executorOptions().resourceProfile(),
                    ExecutionPipeline.JAVA, Optional.of(tests)));
        } catch (InvalidRequestException e) {
            throw new AgentConfigException(e.getMessage());
        }
        return new TestRun(outcome.tests().orElseThrow(), outcome);
    }

    // ---- chats ----

    /** Starts a chat and returns its id at once; the chat runs on, persisted, whatever the caller does. */
    public String startChat(Agent initiator, Agent recipient, String message, OptionalInt maxTurns) {
        String id = UUID.randomUUID().toString();
        startChat(id, initiator, recipient, message, maxTurns);
        return id;
    }

    /** Starts a chat under a chosen id; repeating the same start is harmless. */
    public void startChat(String conversationId, Agent initiator, Agent recipient, String message, OptionalInt maxTurns) {
        await(conversation(conversationId).<Done>askWithStatus(r -> new ConversationEntity.Start(initiator.definition(),
                recipient.definition(), message, maxTurns, r), settings.askTimeout()));
    }

    /** AG2's initiate_chat: blocks until the chat ends (human input, if due, comes through {@link #provideHumanInput}). */
    public ChatResult initiateChat(Agent initiator, Agent recipient, String message, OptionalInt maxTurns) {
        String id = startChat(initiator, recipient, message, maxTurns);
        return awaitResult(id, Duration.ofDays(365));
    }

    public ConversationEntity.Transcript transcript(String conversationId) {
        return await(conversation(conversationId).ask(ConversationEntity.GetTranscript::new, settings.askTimeout()));
    }

    /** A human's reply to a chat that waits for one: text, "" to let the auto reply go, or "exit". */
    public void provideHumanInput(String conversationId, String text) {
        await(conversation(conversationId).<Done>askWithStatus(r -> new ConversationEntity.ProvideHumanInput(text, r),
                settings.askTimeout()));
    }

    /** Waits until the chat ends, re-reading its transcript; survives the chat moving to another node. */
    public ChatResult awaitResult(String conversationId, Duration timeout) {
        Instant deadline = Instant.now().plus(timeout);
        while (true) {
            try {
                ConversationEntity.Transcript t = transcript(conversationId);
                if (t.status().isOver()) {
                    return toResult(t);
                }
            } catch (RuntimeException e) {
                // an entity being moved or recovered does not answer for a moment
                log.debug("transcript of {} not available yet: {}", conversationId, e.getMessage());
            }
            if (Instant.now().isAfter(deadline)) {
                throw new IllegalStateException("conversation " + conversationId + " did not end within " + timeout);
            }
            sleep(settings.pollInterval());
        }
    }

    public static ChatResult toResult(ConversationEntity.Transcript t) {
        String summary = t.messages().isEmpty() ? "" : t.messages().get(t.messages().size() - 1).content();
        return new ChatResult(t.conversationId(), t.status(), t.messages(), t.executions(), summary, t.tokenUsage(),
                t.endReason());
    }

    private EntityRef<AgentEntity.Command> agent(String name) {
        return sharding.entityRefFor(AgentEntity.TYPE_KEY, name);
    }

    private EntityRef<ConversationEntity.Command> conversation(String id) {
        return sharding.entityRefFor(ConversationEntity.TYPE_KEY, id);
    }

    private <T> T await(CompletionStage<T> stage) {
        try {
            return stage.toCompletableFuture().get(settings.askTimeout().toMillis() * 4, TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            Throwable cause = e.getCause();
            if (cause instanceof StatusReply.ErrorMessage m) {
                throw new AgentConfigException(m.getMessage());
            }
            if (cause instanceof RuntimeException r) {
                throw r;
            }
            throw new IllegalStateException(cause);
        } catch (TimeoutException e) {
            throw new IllegalStateException("no answer within " + settings.askTimeout().multipliedBy(4), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    private static void sleep(Duration d) {
        try {
            Thread.sleep(d.toMillis());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }

    /**
     * Stops this runtime's model threads and node-local engine; when it started its own node, also
     * leaves the cluster and stops it (chats under way continue on the next node that starts).
     */
    @Override
    public void close() {
        if (ownsCluster) {
            // the node first: a model call cut off afterwards must not be persisted as a failed chat
            cluster.close();
            llmThreads.shutdownNow();
        } else {
            // the node stays: calls under way finish and their answers are kept (no interrupt, no failed chat)
            llmThreads.shutdown();
        }
        executions.close();
        ownPort.ifPresent(ExecutionPort::close);
    }
}
