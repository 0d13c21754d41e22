package io.agentexec.sandbox.options;

import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.SandboxOptions;
import io.agentexec.sandbox.policy.PolicyViolationException;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * The one place that decides which sandbox options weaken isolation: the engine's hardening defaults (the floor), the
 * networks and runtimes the operator allows. AG2's {@code docker_run_args} ({@link RunArgs}) and options given
 * directly ({@link #check}: the cluster's API, the worker, the Docker backend where they take effect) are both
 * judged by these rules.
 *
 * @param defaults        the engine's configured hardening; its runtime is the configured one (empty: the daemon's
 *                        default)
 * @param allowedNetworks network modes an operator permits besides {@code none}
 * @param allowedRuntimes OCI runtimes an operator permits besides the configured one (see {@link #runtimeProblem})
 */
public record OptionRules(SandboxOptions defaults, Set<String> allowedNetworks, Set<String> allowedRuntimes) {

    /** Where the rule on runtimes is configured, for messages. */
    static final String ALLOWED_RUNTIMES_SETTING =
            "agentexec.sandbox.docker.allowed-runtimes (AGENTEXEC_DOCKER_ALLOWED_RUNTIMES)";
    /** Docker's rule for container names, which AG2's {@code docker_container_name} becomes the prefix of. */
    private static final String CONTAINER_NAME = "[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}";

    public OptionRules {
        Objects.requireNonNull(defaults, "defaults");
        allowedNetworks = Set.copyOf(allowedNetworks);
        allowedRuntimes = Set.copyOf(allowedRuntimes);
    }

    /** {@code none} always; any other network only when the operator lists it. */
    public boolean networkAllowed(String mode) {
        return mode.equals("none") || allowedNetworks.contains(mode);
    }

    /**
     * The one rule on OCI runtimes: a sandbox runs under the configured runtime (none configured: the daemon's
     * default, asked for by naming no runtime), or under one the operator listed in {@code allowed-runtimes}. So a
     * tenant cannot leave gVisor for runc unless the operator says so.
     *
     * @return empty when {@code requested} is allowed, else why not (naming the rule and the setting)
     */
    public Optional<String> runtimeProblem(Optional<String> requested) {
        Optional<String> configured = defaults.runtime();
        if (requested.equals(configured) || requested.map(allowedRuntimes::contains).orElse(false)) {
            return Optional.empty();
        }
        return Optional.of((requested.isPresent() ? "runtime " + requested.get() : "the daemon's default runtime")
                + " is not allowed: only the configured runtime ("
                + configured.orElse("none: the daemon's default, used when no runtime is named")
                + ") unless the operator lists more in " + ALLOWED_RUNTIMES_SETTING + "; listed: "
                + new TreeSet<>(allowedRuntimes));
    }

    /** Every runtime a sandbox may use: the configured one (empty: the daemon's default) and the listed ones. */
    public List<Optional<String>> usableRuntimes() {
        List<Optional<String>> runtimes = new ArrayList<>();
        runtimes.add(defaults.runtime());
        new TreeSet<>(allowedRuntimes).stream().map(Optional::of)
                .filter(r -> !r.equals(defaults.runtime())).forEach(runtimes::add);
        return List.copyOf(runtimes);
    }

    /** Why a tmpfs mount point is refused (it must be an absolute path below /, without ..), or empty. */
    public static Optional<String> tmpfsPathProblem(String path) {
        if (!path.startsWith("/") || path.contains("..") || path.equals("/")) {
            return Optional.of("needs an absolute path below /, got " + path);
        }
        return Optional.empty();
    }

    /** AG2's {@code docker_container_name}, checked against Docker's rules. */
    public static String containerName(String name) {
        if (!name.matches(CONTAINER_NAME)) {
            throw new InvalidRequestException("docker_container_name must match [a-zA-Z0-9][a-zA-Z0-9_.-]*, got " + name);
        }
        return name;
    }

    /**
     * Options given directly get the checks {@code docker_run_args} get: nothing weaker than the engine's hardening,
     * networks only from the allowed list, the configured runtime or a listed one, a user through the one user
     * parser, tmpfs below /, a container name Docker accepts.
     *
     * @throws PolicyViolationException naming the rule (an {@link InvalidRequestException})
     */
    public void check(SandboxOptions options) {
        if (!networkAllowed(options.networkMode())) {
            throw violation("network " + options.networkMode() + " is not allowed; allowed: " + allowedNetworks);
        }
        runtimeProblem(options.runtime()).ifPresent(problem -> {
            throw violation(problem);
        });
        try {
            SandboxUser.parse(options.user());
        } catch (IllegalArgumentException e) {
            throw violation("user refused, it could run as root: " + e.getMessage());
        }
        if (defaults.readOnlyRootFilesystem() && !options.readOnlyRootFilesystem()) {
            throw violation("a writable root filesystem weakens isolation");
        }
        if (defaults.noNewPrivileges() && !options.noNewPrivileges()) {
            throw violation("no-new-privileges off weakens isolation");
        }
        if (!options.capDrop().contains("ALL") && !options.capDrop().containsAll(defaults.capDrop())) {
            throw violation("dropping " + options.capDrop() + " keeps capabilities the defaults drop ("
                    + defaults.capDrop() + ")");
        }
        options.tmpfs().keySet().forEach(path -> tmpfsPathProblem(path).ifPresent(problem -> {
            throw violation("tmpfs " + problem);
        }));
        options.namePrefix().ifPresent(OptionRules::containerName);
    }

    /**
     * The options as the sandbox gets them: checked by {@link #check}, the user in its one spelling
     * ({@code UID:GID}, a lone uid its own gid).
     */
    public SandboxOptions checked(SandboxOptions options) {
        check(options);
        return options.withUser(SandboxUser.parse(options.user()).toString());
    }

    private static PolicyViolationException violation(String what) {
        return new PolicyViolationException("docker options: " + what);
    }
}
