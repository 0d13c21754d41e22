package io.agentexec.agents.execution;

import com.typesafe.config.Config;
import io.agentexec.agents.AgentConfigException;
import io.agentexec.sandbox.model.Limits;
import java.time.Duration;
import java.util.Map;
import java.util.TreeMap;

/**
 * The seed's OptimizedExecutor: named resource profiles (simple, medium, complex) giving memory,
 * CPUs and timeout, from {@code agentexec.agents.resource-profiles}.
 */
public final class ResourceProfiles {
    public record Profile(String name, long memoryBytes, double cpus, Duration timeout) {
        public Limits applyTo(Limits base) {
            return base.withMemoryBytes(memoryBytes).withCpus(cpus).withTimeout(timeout);
        }
    }

    private final Map<String, Profile> profiles;

    public ResourceProfiles(Map<String, Profile> profiles) {
        this.profiles = Map.copyOf(profiles);
    }

    public static ResourceProfiles fromConfig(Config root) {
        Config c = root.getConfig("agentexec.agents.resource-profiles");
        Map<String, Profile> map = new TreeMap<>();
        for (String name : c.root().keySet()) {
            Config p = c.getConfig(name);
            map.put(name, new Profile(name, p.getBytes("memory"), p.getDouble("cpus"), p.getDuration("timeout")));
        }
        return new ResourceProfiles(map);
    }

    public Profile get(String name) {
        Profile p = profiles.get(name);
        if (p == null) {
            throw new AgentConfigException("resource_profile: unknown profile '" + name + "' (configured: "
                    + new TreeMap<>(profiles).keySet() + ")");
        }
        return p;
    }

    public boolean has(String name) {
        return profiles.containsKey(name);
    }
}
