package io.agentexec.sandbox.docker;

import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.Set;

/**
 * Reads AG2's {@code docker_run_args} list (the flags of {@code docker run}) into typed settings.
 * Flags that would weaken the sandbox are refused with an error naming the flag; flags that are
 * neither understood nor dangerous are refused too, so that nothing is silently ignored.
 */
public final class DockerRunArgs {
    /** The result: hardening options and limits with the flags applied. */
    public record Applied(DockerOptions options, Limits limits) {
    }

    private static final Set<String> WEAKENING = Set.of(
            "--privileged", "-v", "--volume", "--volumes-from", "--mount", "--cap-add", "--device",
            "--device-cgroup-rule", "--pid", "--ipc", "--uts", "--userns", "--cgroupns", "--cgroup-parent",
            "--sysctl", "-p", "--publish", "-P", "--publish-all", "--add-host",
            "--gpus", "--oom-kill-disable", "--group-add");

    private DockerRunArgs() {
    }

    /**
     * @param options         the engine's defaults (their runtime is the configured one)
     * @param allowedNetworks network modes an operator permits ({@code none} at least)
     * @param allowedRuntimes OCI runtimes an operator permits besides the configured one (see
     *                        {@link DockerBackendSettings#runtimeProblem})
     */
    public static Applied apply(List<String> args, DockerOptions options, Limits limits,
                                Set<String> allowedNetworks, Set<String> allowedRuntimes) {
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
        DockerOptions o = options;
        Limits l = limits;
        // The options given are the engine's defaults: their runtime is the configured one.
        Optional<String> configuredRuntime = options.runtime();
        for (int i = 0; i < tokens.size(); i++) {
            String flag = tokens.get(i);
            switch (flag) {
                case "--rm", "--init", "-i", "--interactive" -> {
                    // sandboxes are always removed when closed, have an init, and take stdin
                }
                case "--read-only" -> o = o.withReadOnlyRootFilesystem(optionalBoolean(tokens, i));
                case "--network", "--net" -> {
                    String mode = value(tokens, ++i, flag);
                    if (!allowedNetworks.contains(mode)) {
                        throw new InvalidRequestException("docker_run_args: " + flag + " " + mode
                                + " weakens isolation; allowed: " + allowedNetworks);
                    }
                    o = o.withNetworkMode(mode);
                }
                case "--tmpfs" -> {
                    String spec = value(tokens, ++i, flag);
                    int colon = spec.indexOf(':');
                    String path = colon < 0 ? spec : spec.substring(0, colon);
                    String opts = colon < 0 ? "rw,nosuid,nodev,size=64m" : spec.substring(colon + 1);
                    if (!path.startsWith("/") || path.contains("..") || path.equals("/")) {
                        throw new InvalidRequestException("docker_run_args: --tmpfs needs an absolute path below /, got " + path);
                    }
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
                    DockerBackendSettings.runtimeProblem(configuredRuntime, allowedRuntimes, runtime).ifPresent(problem -> {
                        throw new InvalidRequestException("docker_run_args: --runtime " + runtime.get() + ": " + problem);
                    });
                    o = o.withRuntime(runtime);
                }
                case "--name" -> o = o.withNamePrefix(Optional.of(containerName(value(tokens, ++i, flag))));
                default -> {
                    if (WEAKENING.contains(flag)) {
                        throw new InvalidRequestException("docker_run_args: " + flag + " weakens isolation and is refused");
                    }
                    throw new InvalidRequestException("docker_run_args: unsupported flag " + flag);
                }
            }
        }
        if (!o.networkMode().equals("none") && !allowedNetworks.contains(o.networkMode())) {
            throw new InvalidRequestException("docker_run_args: network " + o.networkMode() + " is not allowed");
        }
        return new Applied(o, l);
    }

    /** AG2's {@code docker_container_name}, checked against Docker's rules. */
    public static String containerName(String name) {
        if (!name.matches("[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}")) {
            throw new InvalidRequestException("docker_container_name must match [a-zA-Z0-9][a-zA-Z0-9_.-]*, got " + name);
        }
        return name;
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
