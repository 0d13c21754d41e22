package io.agentexec.agents.execution;

import com.typesafe.config.Config;
import io.agentexec.agents.AgentDefinition;
import io.agentexec.agents.CodeExecutionConfig;
import io.agentexec.sandbox.CodeValidator;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.model.CodeBlock;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.Limits;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Turns an agent's code blocks into an execution: its forbidden patterns (SecureCodeExecutor), its
 * resource profile (OptimizedExecutor) with {@code timeout} on top, the image (seed image names are
 * mapped to the images this installation has), and the cache key (CachingExecutor).
 */
public final class ExecutionPlanner {
    /** What to run and how to recognise it again. */
    public record Plan(ExecutionCall call, String profile, String cacheKey) {
    }

    private final EngineSettings engine;
    private final ResourceProfiles profiles;
    private final Map<String, String> imageAliases;

    public ExecutionPlanner(EngineSettings engine, ResourceProfiles profiles, Map<String, String> imageAliases) {
        this.engine = engine;
        this.profiles = profiles;
        this.imageAliases = Map.copyOf(imageAliases);
    }

    public static ExecutionPlanner fromConfig(Config root) {
        Map<String, String> aliases = new LinkedHashMap<>();
        root.getConfig("agentexec.agents.execution").getObject("image-aliases")
                .forEach((k, v) -> aliases.put(k, String.valueOf(v.unwrapped())));
        return new ExecutionPlanner(EngineSettings.fromConfig(root), ResourceProfiles.fromConfig(root), aliases);
    }

    public ResourceProfiles profiles() {
        return profiles;
    }

    /** The first of the agent's forbidden patterns that the code contains. */
    public Optional<String> violation(AgentDefinition agent, List<CodeBlock> blocks) {
        CodeValidator validator = new CodeValidator(agent.executorOptions().forbiddenPatterns());
        return blocks.stream().map(b -> validator.firstViolation(b.code())).flatMap(Optional::stream).findFirst();
    }

    public Plan plan(AgentDefinition agent, String conversationId, String executionKey, List<CodeBlock> blocks,
                     String profileName) {
        CodeExecutionConfig config = agent.codeExecution().orElseThrow(
                () -> new IllegalStateException(agent.name() + " has no code_execution_config"));
        ResourceProfiles.Profile profile = profiles.get(profileName);
        Limits limits = profile.applyTo(engine.defaultLimits());
        if (config.timeout().isPresent()) {
            limits = limits.withTimeout(config.timeout().get());
        }
        Optional<String> image = config.image().map(i -> imageAliases.getOrDefault(i, i));
        ExecutionRequest request = ExecutionRequest.builder(limits).blocks(blocks).build();
        String sandboxKey = sandboxKey(conversationId, agent.name(), config);
        ExecutionCall call = new ExecutionCall(sandboxKey, executionKey, config.isolation(), image,
                config.containerName(), config.dockerRunArgs(), request);
        return new Plan(call, profile.name(), cacheKey(call));
    }

    /** The agent's workspace in one chat (AG2's work_dir): files persist across its executions, and go when the chat ends. */
    public static String sandboxKey(String conversationId, String agentName, CodeExecutionConfig config) {
        return conversationId + "/" + agentName + "/" + config.workDir();
    }

    /** Hash of code, languages, image, isolation and limits (and run args): what decides a result. */
    static String cacheKey(ExecutionCall call) {
        StringBuilder text = new StringBuilder();
        for (CodeBlock b : call.request().blocks()) {
            text.append(b.language()).append('\0').append(b.code()).append('\0');
        }
        text.append(call.image().orElse("default")).append('\0').append(call.isolation()).append('\0')
                .append(call.request().limits()).append('\0').append(call.dockerRunArgs());
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256")
                    .digest(text.toString().getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
