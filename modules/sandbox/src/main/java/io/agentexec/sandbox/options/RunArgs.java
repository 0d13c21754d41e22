package io.agentexec.sandbox.options;

import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;

/**
 * Reads AG2's {@code docker_run_args} list (the flags of {@code docker run}) into neutral sandbox options and limits:
 * the one entry point for them, whichever way they come in (conversations, the CLI, the cluster's API). Flags that
 * would weaken the sandbox are refused with an error naming the flag, by the engine's {@link OptionRules}; flags that
 * are neither understood nor dangerous are refused too, so that nothing is silently ignored.
 */
public final class RunArgs {
    /** The result: hardening options and limits with the flags applied. */
    public record Applied(SandboxOptions options, Limits limits) {
    }

    private static final Set<String> WEAKENING = Set.of(
            "--privileged", "-v", "--volume", "--volumes-from", "--mount", "--cap-add", "--device",
            "--device-cgroup-rule", "--pid", "--ipc", "--uts", "--userns", "--cgroupns", "--cgroup-parent",
            "--sysctl", "-p", "--publish", "-P", "--publish-all", "--add-host",
            "--gpus", "--oom-kill-disable", "--group-add");

    private RunArgs() {
    }

    /** The flags applied to the engine's defaults ({@code rules.defaults()}). */
    public static Applied apply(List<String> args, Limits limits, OptionRules rules) {
        return apply(args, rules.defaults(), limits, rules);
    }

    /**
     * AG2's two Docker settings of a code executor: {@code docker_run_args} applied to the engine's defaults, then
     * {@code docker_container_name}, when given, as the containers' name prefix (it wins over a {@code --name} flag).
     */
    public static Applied apply(List<String> args, Optional<String> containerName, Limits limits, OptionRules rules) {
        Applied applied = apply(args, limits, rules);
        return containerName.isEmpty() ? applied : new Applied(
                applied.options().withNamePrefix(Optional.of(OptionRules.containerName(containerName.get()))),
                applied.limits());
    }

    /**
     * @param options the options the flags change (usually the engine's defaults, maybe with AG2's container name)
     * @param limits  the limits the flags change
     * @param rules   what the flags may ask for: networks, runtimes (the configured one is {@code rules.defaults()}'s)
     */
    public static Applied apply(List<String> args, SandboxOptions options, Limits limits, OptionRules rules) {
        List<String> tokens = new ArrayList<>();
        for (String arg : args) {
            if (arg == null) {
                throw new InvalidRequestException("docker_run_args: an argument is null");
            }
            // --flag=value is the same as --flag value
            int eq = arg.indexOf('=');
            if (arg.startsWith("--") && eq > 2) {
                tokens.add(arg.substring(0, eq));
                tokens.add(arg.substring(eq + 1));
            } else {
                tokens.add(arg);
            }
        }
        SandboxOptions o = options;
        Limits l = limits;
        for (int i = 0; i < tokens.size(); i++) {
            String flag = tokens.get(i);
            switch (flag) {
                case "--rm", "--init", "-i", "--interactive" -> {
                    // sandboxes are always removed when closed, have an init, and take stdin
                }
                case "--read-only" -> o = o.withReadOnlyRootFilesystem(optionalBoolean(tokens, i));
                case "--network", "--net" -> {
                    String mode = value(tokens, ++i, flag);
                    if (!rules.networkAllowed(mode)) {
                        throw new InvalidRequestException("docker_run_args: " + flag + " " + mode
                                + " weakens isolation; allowed: " + rules.allowedNetworks());
                    }
                    o = o.withNetworkMode(mode);
                }
                case "--tmpfs" -> {
                    String spec = value(tokens, ++i, flag);
                    int colon = spec.indexOf(':');
                    String path = colon < 0 ? spec : spec.substring(0, colon);
                    String opts = colon < 0 ? "rw,nosuid,nodev,size=64m" : spec.substring(colon + 1);
                    OptionRules.tmpfsPathProblem(path).ifPresent(problem -> {
                        throw new InvalidRequestException("docker_run_args: --tmpfs " + problem);
                    });
                    o = o.withTmpfs(path, opts);
                }
                case "--memory", "-m" -> l = l.withMemoryBytes(Limits.parseBytes(value(tokens, ++i, flag)));
                case "--memory-swap" -> {
                    String v = value(tokens, ++i, flag);
                    if (v.equals("-1") || Limits.parseBytes(v) != l.memoryBytes()) {
                        throw new InvalidRequestException("docker_run_args: --memory-swap " + v
                                + " weakens isolation; swap is always equal to --memory");
                    }
                }
                case "--cpus" -> {
                    String v = value(tokens, ++i, flag);
                    try {
                        l = l.withCpus(Double.parseDouble(v));
                    } catch (NumberFormatException e) {
                        throw new InvalidRequestException("docker_run_args: --cpus needs a number, got " + v);
                    }
                }
                case "--pids-limit" -> {
                    String v = value(tokens, ++i, flag);
                    try {
                        int pids = Integer.parseInt(v);
                        if (pids <= 0) {
                            throw new InvalidRequestException("docker_run_args: --pids-limit " + v + " weakens isolation (unlimited)");
                        }
                        l = l.withPids(pids);
                    } catch (NumberFormatException e) {
                        throw new InvalidRequestException("docker_run_args: --pids-limit needs a number, got " + v);
                    }
                }
                case "--cap-drop" -> {
                    String cap = value(tokens, ++i, flag).toUpperCase(Locale.ROOT);
                    List<String> drops = new ArrayList<>(o.capDrop());
                    if (!drops.contains(cap) && !drops.contains("ALL")) {
                        drops.add(cap);
                    }
                    o = o.withCapDrop(drops);
                }
                case "--security-opt" -> {
                    String v = value(tokens, ++i, flag);
                    String normalized = v.replace('=', ':');
                    if (normalized.equals("no-new-privileges") || normalized.equals("no-new-privileges:true")) {
                        o = o.withNoNewPrivileges(true);
                    } else {
                        throw new InvalidRequestException("docker_run_args: --security-opt " + v
                                + " weakens isolation or is not supported; only no-new-privileges is accepted");
                    }
                }
                case "--user", "-u" -> {
                    String user = value(tokens, ++i, flag);
                    try {
                        o = o.withUser(SandboxUser.parse(user).toString());
                    } catch (IllegalArgumentException e) {
                        throw new InvalidRequestException("docker_run_args: " + flag + " refused, it could run as root: "
                                + e.getMessage());
                    }
                }
                case "--runtime" -> {
                    Optional<String> runtime = Optional.of(value(tokens, ++i, flag));
                    rules.runtimeProblem(runtime).ifPresent(problem -> {
                        throw new InvalidRequestException("docker_run_args: --runtime " + runtime.get() + ": " + problem);
                    });
                    o = o.withRuntime(runtime);
                }
                case "--name" -> o = o.withNamePrefix(Optional.of(OptionRules.containerName(value(tokens, ++i, flag))));
                default -> {
                    if (WEAKENING.contains(flag)) {
                        throw new InvalidRequestException("docker_run_args: " + flag + " weakens isolation and is refused");
                    }
                    throw new InvalidRequestException("docker_run_args: unsupported flag " + flag);
                }
            }
        }
        if (!rules.networkAllowed(o.networkMode())) {
            throw new InvalidRequestException("docker_run_args: network " + o.networkMode() + " is not allowed");
        }
        return new Applied(o, l);
    }

    private static boolean optionalBoolean(List<String> tokens, int i) {
        if (i + 1 < tokens.size() && (tokens.get(i + 1).equals("true") || tokens.get(i + 1).equals("false"))) {
            boolean v = Boolean.parseBoolean(tokens.remove(i + 1));
            if (!v) {
                throw new InvalidRequestException("docker_run_args: --read-only=false weakens isolation");
            }
            return true;
        }
        return true;
    }

    private static String value(List<String> tokens, int i, String flag) {
        if (i >= tokens.size()) {
            throw new InvalidRequestException("docker_run_args: " + flag + " needs a value");
        }
        return tokens.get(i);
    }
}
