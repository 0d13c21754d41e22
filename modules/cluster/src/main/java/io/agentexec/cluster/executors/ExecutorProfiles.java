package io.agentexec.cluster.executors;

import com.typesafe.config.Config;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.policy.ExecutionPolicy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalLong;

/**
 * The one table of named resource profiles ({@code agentexec.executors.profiles}): the seed's OptimizedExecutor
 * complexities ({@code simple} 256m / 0.5 CPU / 30 s, {@code medium} 512m / 1.0 / 120 s, {@code complex} 1g / 2.0 /
 * 600 s), the gateway's presets ({@code default}: nothing changed, {@code datascience}: its image) and whatever the
 * operator adds. A profile sets what it names over the caller's base limits; the result is then held under the
 * caller's policy ceilings, and every value brought down is said in a note (the seed's 600 s of {@code complex} is
 * 300 s under the default ceiling).
 */
public final class ExecutorProfiles {

    /** A named profile; an empty value leaves the base limit (or the language's image) as it is. */
    public record Profile(String name, OptionalLong memoryBytes, OptionalDouble cpus, Optional<Duration> timeout,
                          Optional<String> image) {
        public Profile {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(memoryBytes, "memoryBytes");
            Objects.requireNonNull(cpus, "cpus");
            Objects.requireNonNull(timeout, "timeout");
            Objects.requireNonNull(image, "image");
        }

        /** The profile's values over {@code base}, as asked (before any ceiling). */
        public Limits over(Limits base) {
            Limits l = base;
            if (memoryBytes.isPresent()) {
                l = l.withMemoryBytes(memoryBytes.getAsLong());
            }
            if (cpus.isPresent()) {
                l = l.withCpus(cpus.getAsDouble());
            }
            if (timeout.isPresent()) {
                l = l.withTimeout(timeout.get());
            }
            return l;
        }
    }

    /**
     * A profile applied: the limits as held under the ceilings, its image, and a note for every value the ceilings
     * brought down (empty when none was).
     */
    public record Applied(String profile, Limits limits, Optional<String> image, List<String> notes) {
        public Applied {
            Objects.requireNonNull(profile, "profile");
            Objects.requireNonNull(limits, "limits");
            Objects.requireNonNull(image, "image");
            notes = List.copyOf(notes);
        }
    }

    private final Map<String, Profile> profiles;

    public ExecutorProfiles(Map<String, Profile> profiles) {
        this.profiles = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(profiles));
    }

    /** Reads {@code agentexec.executors.profiles}: each entry's optional {@code memory}, {@code cpus}, {@code timeout}, {@code image}. */
    public static ExecutorProfiles fromConfig(Config root) {
        Config c = root.getConfig("agentexec.executors.profiles");
        Map<String, Profile> map = new LinkedHashMap<>();
        for (String name : new java.util.TreeSet<>(c.root().keySet())) {
            Config p = c.getConfig(quoted(name));
            map.put(name, new Profile(name,
                    present(p, "memory") ? OptionalLong.of(p.getBytes("memory")) : OptionalLong.empty(),
                    present(p, "cpus") ? OptionalDouble.of(p.getDouble("cpus")) : OptionalDouble.empty(),
                    present(p, "timeout") ? Optional.of(p.getDuration("timeout")) : Optional.empty(),
                    present(p, "image") ? Optional.of(p.getString("image")) : Optional.empty()));
        }
        return new ExecutorProfiles(map);
    }

    /** A key an environment variable left empty ({@code ""}) counts as absent. */
    private static boolean present(Config c, String key) {
        return c.hasPath(key) && !(c.getValue(key).unwrapped() instanceof String s && s.isBlank());
    }

    private static String quoted(String key) {
        return "\"" + key.replace("\"", "\\\"") + "\"";
    }

    public boolean has(String name) {
        return profiles.containsKey(name);
    }

    public java.util.Set<String> names() {
        return profiles.keySet();
    }

    /** The profile {@code name}; {@link InvalidRequestException} naming the field and the known profiles otherwise. */
    public Profile get(String name) {
        Profile p = profiles.get(name);
        if (p == null) {
            throw new InvalidRequestException("profile: unknown profile '" + name + "'; known: "
                    + String.join(", ", profiles.keySet()));
        }
        return p;
    }

    /**
     * Profile {@code name} over {@code base}, held under {@code policy}'s ceilings; a note says each value brought down,
     * e.g. {@code profile complex: timeout 600 s is above the ceiling of 300 s, held at 300 s}.
     */
    public Applied apply(String name, Limits base, ExecutionPolicy policy) {
        Profile p = get(name);
        Limits asked = p.over(base);
        List<String> notes = new ArrayList<>();
        // only what the profile sets is its to report: its values over the ceilings themselves
        for (String excess : policy.excesses(p.over(policy.ceilings()))) {
            notes.add("profile " + name + ": " + excess + "; held at the ceiling");
        }
        return new Applied(name, policy.clamp(asked), p.image(), notes);
    }
}
