package io.agentexec.sandbox.docker;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.api.command.CreateContainerCmd;
import com.github.dockerjava.api.model.Capability;
import com.github.dockerjava.api.model.HostConfig;
import com.github.dockerjava.api.model.LogConfig;
import com.github.dockerjava.api.model.Mount;
import com.github.dockerjava.api.model.MountType;
import io.agentexec.sandbox.agent.Scrub;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * The hardened container of one session, as Docker's create command gets it. Computed from the session's image, limits
 * and options and the backend's settings alone, without a daemon call, so that what a container is made with is
 * checked by plain unit tests.
 *
 * @param name       the container's name, when AG2 named a prefix (PREFIX-SESSIONID); else Docker picks one
 * @param entrypoint the agent, pid 1 of the container (it reaps zombies: no Docker init)
 * @param labels     what the reaper and the tests find the container by: managed, session, owner
 */
record ContainerSpec(String image, Optional<String> name, List<String> entrypoint, String user, String workingDir,
                     List<String> env, Map<String, String> labels, HostConfig hostConfig) {

    static final String MANAGED_LABEL = "io.agentexec.managed";
    static final String SESSION_LABEL = "io.agentexec.session";
    /** Where the agent volume is mounted, read-only. */
    static final String AGENT_DIR = "/.agentexec";
    static final String AGENT_FILE = "agentexec-agent";
    /** The environment of the agent itself (each run gets the engine's run-environment instead). */
    static final String CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    static final Map<String, String> AGENT_ENVIRONMENT = Map.of("PATH", CONTAINER_PATH, "LANG", "C.UTF-8");

    ContainerSpec {
        entrypoint = List.copyOf(entrypoint);
        env = List.copyOf(env);
        labels = Map.copyOf(labels);
    }

    /**
     * Memory, swap, CPU and pids of a container: at creation, and between runs by {@code docker update}, with the same
     * CFS period (Docker requires it unchanged).
     *
     * @param pidsLimit the host cgroup's limit: the user's, or for a runtime with its own kernel the runtime's (see
     *                  {@link DockerBackendSettings#hostPidsLimit})
     */
    record Resources(long memoryBytes, long memorySwapBytes, long cpuPeriodMicros, long cpuQuotaMicros, long pidsLimit) {
        /** The CFS period of every container. */
        static final long CPU_PERIOD_MICROS = 100_000;
        /** The smallest quota the kernel takes (1 ms per period). */
        private static final long MIN_CPU_QUOTA_MICROS = 1000;

        static Resources of(Limits limits, Optional<String> runtime, DockerBackendSettings settings) {
            // Swap equal to memory: no swap at all.
            return new Resources(limits.memoryBytes(), limits.memoryBytes(), CPU_PERIOD_MICROS,
                    (long) Math.max(MIN_CPU_QUOTA_MICROS, limits.cpus() * CPU_PERIOD_MICROS),
                    settings.hostPidsLimit(limits.pids(), runtime));
        }
    }

    /**
     * The container of session {@code sessionId}.
     *
     * @param options     the session's options, already checked ({@link io.agentexec.sandbox.options.OptionRules})
     * @param agentVolume the volume holding the agent ({@link AgentVolume})
     * @param owner       the labels of this JVM and of the node it works for ({@link ContainerOwner#labels}), for the
     *                    reaper
     */
    static ContainerSpec forSession(String sessionId, String image, Limits limits, SandboxOptions options,
                                    DockerBackendSettings settings, String agentVolume, Map<String, String> owner) {
        Map<String, String> tmpfs = new LinkedHashMap<>(options.tmpfs());
        tmpfs.put(settings.workspace(), workspaceTmpfsOptions(options.user(), limits.workspaceBytes()));
        Resources resources = Resources.of(limits, options.runtime(), settings);
        HostConfig host = HostConfig.newHostConfig()
                .withNetworkMode(options.networkMode())
                .withReadonlyRootfs(options.readOnlyRootFilesystem())
                .withTmpFs(tmpfs)
                .withCapDrop(options.capDrop().stream().map(Capability::valueOf).toArray(Capability[]::new))
                .withSecurityOpts(options.noNewPrivileges() ? List.of("no-new-privileges") : List.of())
                .withPidsLimit(resources.pidsLimit())
                .withMemory(resources.memoryBytes())
                .withMemorySwap(resources.memorySwapBytes())
                .withCpuPeriod(resources.cpuPeriodMicros())
                .withCpuQuota(resources.cpuQuotaMicros())
                .withMounts(List.of(new Mount().withType(MountType.VOLUME).withSource(agentVolume)
                        .withTarget(AGENT_DIR).withReadOnly(true)))
                // The agent's stdout carries every frame: the user's output, downloaded files. A log driver would
                // keep all of it on the host (json-file: /var/lib/docker/containers/ID/ID-json.log, unrotated),
                // readable there after the tenant is gone. The attach stream does not need a log.
                .withLogConfig(new LogConfig(LogConfig.LoggingType.NONE))
                .withInit(false);
        options.runtime().ifPresent(host::withRuntime);
        return new ContainerSpec(image, options.namePrefix().map(prefix -> prefix + "-" + sessionId),
                List.of(AGENT_DIR + "/" + AGENT_FILE, "serve", "--contained", "--workspace", settings.workspace()),
                options.user(), settings.workspace(),
                List.of("PATH=" + AGENT_ENVIRONMENT.get("PATH"), "LANG=" + AGENT_ENVIRONMENT.get("LANG")),
                labels(sessionId, owner), host);
    }

    private static Map<String, String> labels(String sessionId, Map<String, String> owner) {
        Map<String, String> labels = new LinkedHashMap<>(owner);
        labels.put(MANAGED_LABEL, "true");
        labels.put(SESSION_LABEL, sessionId);
        return labels;
    }

    /** The create command of this container on {@code client} (not executed). */
    CreateContainerCmd command(DockerClient client) {
        CreateContainerCmd cmd = client.createContainerCmd(image)
                .withEntrypoint(entrypoint)
                .withCmd(List.of())
                .withUser(user)
                .withWorkingDir(workingDir)
                .withEnv(env)
                .withAttachStdin(true).withAttachStdout(true).withAttachStderr(true)
                // StdinOnce: when our attach connection drops (this JVM died), the agent reads EOF and the
                // container stops at once instead of idling until the reaper removes it.
                .withStdinOpen(true).withStdInOnce(true).withTty(false)
                .withLabels(labels)
                .withHostConfig(hostConfig);
        name.ifPresent(cmd::withName);
        return cmd;
    }

    /** Where Docker mounts the container's own tmpfs for POSIX shared memory (its IPC namespace's). */
    static final String SHM_DIR = "/dev/shm";

    /**
     * The container's writable mounts, which a scrub empties (see {@link Scrub}): the
     * workspace (given back the mode it was created with: its owner, the sandbox's user, may chmod it), the options'
     * tmpfs mounts and /dev/shm (root's, so their modes cannot have changed). With a read-only root nothing else in
     * the container's file system is writable.
     */
    static List<Scrub.Directory> writableMounts(SandboxOptions options,
                                                                          DockerBackendSettings settings) {
        List<Scrub.Directory> dirs = new ArrayList<>();
        dirs.add(new Scrub.Directory(settings.workspace(),
                workspaceMode(options.user())));
        options.tmpfs().keySet().stream().filter(path -> !path.equals(settings.workspace()))
                .forEach(path -> dirs.add(new Scrub.Directory(path, 0)));
        if (!options.tmpfs().containsKey(SHM_DIR)) {
            dirs.add(new Scrub.Directory(SHM_DIR, 0));
        }
        return dirs;
    }

    /** The workspace tmpfs's mode (see {@link #workspaceTmpfsOptions}). */
    static int workspaceMode(String user) {
        return user.matches("\\d+(:\\d+)?") ? 0700 : 01777;
    }

    /** The workspace tmpfs: owned by the sandbox's numeric user and private to it, else world-writable and sticky. */
    static String workspaceTmpfsOptions(String user, long bytes) {
        String base = "rw,nosuid,nodev,exec,size=" + bytes;
        if (user.matches("\\d+(:\\d+)?")) {
            String[] ids = user.split(":");
            return base + ",uid=" + ids[0] + ",gid=" + (ids.length > 1 ? ids[1] : ids[0]) + ",mode=0700";
        }
        return base + ",mode=1777";
    }
}
