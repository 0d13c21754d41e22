package io.agentexec.agents.execution;

import com.typesafe.config.Config;
import io.agentexec.agents.AgentConfigException;
import io.agentexec.agents.AgentDefinition;
import io.agentexec.agents.CodeExecutionConfig;
import io.agentexec.cluster.executors.ExecutorProfiles;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.model.CodeBlock;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Turns an agent's code blocks into an execution: its resource profile (OptimizedExecutor, the shared table
 * {@code agentexec.executors.profiles}) with {@code timeout} on top, the image (seed image names are mapped to the
 * images this installation has), and the scope its cached results are kept under (CachingExecutor). The operator's
 * ceilings are applied on the way to the port ({@link WorkspaceExecutions}), per tenant.
 */
public final class ExecutionPlanner {
    /**
     * What to run and where it is cached.
     *
     * @param cacheScope the agent, its image, isolation and run args: with the request, what decides a result
     */
    public record Plan(ExecutionCall call, String profile, String cacheScope) {
    }

    private final EngineSettings engine;
    private final ExecutorProfiles profiles;
    private final Map<String, String> imageAliases;

    public ExecutionPlanner(EngineSettings engine, ExecutorProfiles profiles, Map<String, String> imageAliases) {
        this.engine = engine;
        this.profiles = profiles;
        this.imageAliases = Map.copyOf(imageAliases);
    }

    public static ExecutionPlanner fromConfig(Config root) {
        Map<String, String> aliases = new LinkedHashMap<>();
        root.getConfig("agentexec.agents.execution").getObject("image-aliases")
                .forEach((k, v) -> aliases.put(k, String.valueOf(v.unwrapped())));
        return new ExecutionPlanner(EngineSettings.fromConfig(root), ExecutorProfiles.fromConfig(root), aliases);
    }

    public ExecutorProfiles profiles() {
        return profiles;
    }

    public Plan plan(AgentDefinition agent, String conversationId, String executionKey, List<CodeBlock> blocks,
                     String profileName) {
        CodeExecutionConfig config = agent.codeExecution().orElseThrow(
                () -> new IllegalStateException(agent.name() + " has no code_execution_config"));
        ExecutorProfiles.Profile profile;
        try {
            profile = profiles.get(profileName);
        } catch (InvalidRequestException e) {
            throw new AgentConfigException("resource_" + e.getMessage());
        }
        Limits limits = profile.over(engine.defaultLimits());
        if (config.timeout().isPresent()) {
            limits = limits.withTimeout(config.timeout().get());
        }
        // the config's image wins over the profile's (datascience names one)
        Optional<String> image = config.image().or(profile::image).map(i -> imageAliases.getOrDefault(i, i));
        ExecutionRequest request = ExecutionRequest.builder(limits).blocks(blocks).build();
        String sandboxKey = sandboxKey(conversationId, agent.name(), config);
        ExecutionCall call = new ExecutionCall(sandboxKey, executionKey, config.isolation(), image,
                config.containerName(), config.dockerRunArgs(), request);
        return new Plan(call, profile.name(), cacheScope(agent.name(), call));
    }

    /** The agent's workspace in one chat (AG2's work_dir): files persist across its executions. */
    public static String sandboxKey(String conversationId, String agentName, CodeExecutionConfig config) {
        return conversationId + "/" + agentName + "/" + config.workDir();
    }

    /** The seed's cache is the executor's: the agent, and where its code runs (image, isolation, run args). */
    static String cacheScope(String agent, ExecutionCall call) {
        return "agent\0" + agent + "\0" + call.image().orElse("default") + "\0" + call.isolation() + "\0"
                + call.containerName().orElse("") + "\0" + call.dockerRunArgs();
    }
}
