package io.agentexec.sandbox.policy;

import com.typesafe.config.Config;
import io.agentexec.sandbox.language.Language;
import io.agentexec.sandbox.language.LanguageTable;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.Limits;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;

/**
 * The operator's rules for every run, whichever way it comes in (HTTP, gRPC, a conversation's code, the
 * cluster's Java API, a job arriving on a worker): the ceilings of its limits and the images it may run
 * in. One object, read from {@code agentexec.policy} on every node, so the edge and the worker judge alike.
 *
 * <p>Two uses: the edge {@link #clamp clamps} what a caller asks to the ceilings (asking for more is not
 * an error: AG2 configs routinely say {@code timeout: 86400}), and whatever runs is {@link #check checked}:
 * a request or sandbox above a ceiling or in an image not allowed is refused, naming the rule. A worker
 * only ever checks: what reaches it above the ceilings came round the edge.
 *
 * @param ceilings      no run's limits go above these
 * @param allowedImages images a run may name beside the languages' own images
 */
public record ExecutionPolicy(Limits ceilings, Set<String> allowedImages) {

    public ExecutionPolicy {
        Objects.requireNonNull(ceilings, "ceilings");
        allowedImages = Set.copyOf(allowedImages);
    }

    /** Reads {@code agentexec.policy} (see the sandbox module's reference.conf). */
    public static ExecutionPolicy fromConfig(Config root) {
        Config c = root.getConfig("agentexec.policy");
        Config max = c.getConfig("max-limits");
        Limits ceilings = new Limits(max.getDuration("timeout"), max.getBytes("memory"), max.getDouble("cpus"),
                max.getInt("pids"), max.getBytes("output-bytes"), max.getBytes("workspace"));
        return new ExecutionPolicy(ceilings, new LinkedHashSet<>(stringList(c, "allowed-images")));
    }

    /** A list, or (from an environment variable) a comma-separated string. */
    static List<String> stringList(Config c, String path) {
        if (c.getValue(path).valueType() == com.typesafe.config.ConfigValueType.STRING) {
            return java.util.Arrays.stream(c.getString(path).split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
        }
        return c.getStringList(path);
    }

    /** The same rules with other ceilings (a tenant's own, never above the operator's: see {@link #tighten}). */
    public ExecutionPolicy withCeilings(Limits value) {
        return new ExecutionPolicy(value, allowedImages);
    }

    /** Each ceiling the lower of this policy's and {@code other}'s: a tenant can be held tighter, never looser. */
    public ExecutionPolicy tighten(Limits other) {
        return withCeilings(clamp(other));
    }

    /** {@code asked}, each value brought down to its ceiling. */
    public Limits clamp(Limits asked) {
        Limits l = asked;
        if (l.timeout().compareTo(ceilings.timeout()) > 0) {
            l = l.withTimeout(ceilings.timeout());
        }
        if (l.memoryBytes() > ceilings.memoryBytes()) {
            l = l.withMemoryBytes(ceilings.memoryBytes());
        }
        if (l.cpus() > ceilings.cpus()) {
            l = l.withCpus(ceilings.cpus());
        }
        if (l.pids() > ceilings.pids()) {
            l = l.withPids(ceilings.pids());
        }
        if (l.outputBytesPerStream() > ceilings.outputBytesPerStream()) {
            l = l.withOutputBytesPerStream(ceilings.outputBytesPerStream());
        }
        if (l.workspaceBytes() > ceilings.workspaceBytes()) {
            l = l.withWorkspaceBytes(ceilings.workspaceBytes());
        }
        return l;
    }

    /** The request with its limits clamped ({@link #clamp}); everything else as asked. */
    public ExecutionRequest clamp(ExecutionRequest request) {
        Limits clamped = clamp(request.limits());
        return clamped.equals(request.limits()) ? request : new ExecutionRequest(request.blocks(), clamped,
                request.environment(), request.stdin(), request.files(), request.image());
    }

    /** Every ceiling {@code limits} goes above, in words; empty when it keeps to all of them. */
    public List<String> excesses(Limits limits) {
        List<String> over = new ArrayList<>();
        if (limits.timeout().compareTo(ceilings.timeout()) > 0) {
            over.add("timeout " + seconds(limits.timeout()) + " s is above the ceiling of " + seconds(ceilings.timeout()) + " s");
        }
        if (limits.memoryBytes() > ceilings.memoryBytes()) {
            over.add("memory " + limits.memoryBytes() + " bytes is above the ceiling of " + ceilings.memoryBytes() + " bytes");
        }
        if (limits.cpus() > ceilings.cpus()) {
            over.add("cpus " + limits.cpus() + " is above the ceiling of " + ceilings.cpus());
        }
        if (limits.pids() > ceilings.pids()) {
            over.add("pids " + limits.pids() + " is above the ceiling of " + ceilings.pids());
        }
        if (limits.outputBytesPerStream() > ceilings.outputBytesPerStream()) {
            over.add("output " + limits.outputBytesPerStream() + " bytes per stream is above the ceiling of "
                    + ceilings.outputBytesPerStream() + " bytes");
        }
        if (limits.workspaceBytes() > ceilings.workspaceBytes()) {
            over.add("workspace " + limits.workspaceBytes() + " bytes is above the ceiling of "
                    + ceilings.workspaceBytes() + " bytes");
        }
        return over;
    }

    /** Whether a run may use {@code image}: a language's own image, or one the operator allowed. */
    public boolean imageAllowed(String image, LanguageTable languages) {
        return allowedImages.contains(image) || languages.all().stream().map(Language::image).anyMatch(image::equals);
    }

    /** The images a run may use, for messages: the languages' own, then the operator's. */
    public List<String> imagesAllowed(LanguageTable languages) {
        Set<String> all = new LinkedHashSet<>();
        languages.all().forEach(l -> all.add(l.image()));
        all.addAll(allowedImages);
        return List.copyOf(all);
    }

    /** Refuses an image that is not allowed, naming the ones that are. */
    public void checkImage(String image, LanguageTable languages) {
        if (!imageAllowed(image, languages)) {
            throw new PolicyViolationException("policy: image '" + image + "' is not allowed; allowed: "
                    + String.join(", ", imagesAllowed(languages)));
        }
    }

    /** Refuses limits above a ceiling, naming each one exceeded. */
    public void checkLimits(Limits limits) {
        List<String> over = excesses(limits);
        if (!over.isEmpty()) {
            throw new PolicyViolationException("policy: " + String.join("; ", over));
        }
    }

    /** Refuses a request whose limits or image break the rules (what a worker does with every job). */
    public void check(ExecutionRequest request, LanguageTable languages) {
        checkLimits(request.limits());
        request.image().ifPresent(image -> checkImage(image, languages));
    }

    /** Refuses a sandbox whose limits or image break the rules. */
    public void checkSandbox(Optional<String> image, Limits limits, LanguageTable languages) {
        checkLimits(limits);
        image.ifPresent(i -> checkImage(i, languages));
    }

    private static String seconds(Duration d) {
        return d.toMillis() % 1000 == 0 ? Long.toString(d.toSeconds()) : Double.toString(d.toMillis() / 1000.0);
    }
}
