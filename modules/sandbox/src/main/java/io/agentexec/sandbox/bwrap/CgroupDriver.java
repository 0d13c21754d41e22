package io.agentexec.sandbox.bwrap;

import io.agentexec.sandbox.model.Limits;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.stream.Collectors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How the bubblewrap backend makes a sandbox's cgroups on this machine: cgroup v1 (a group per controller under
 * {@code cgroup-root/CONTROLLER/cgroup-parent}) or v2 (one group under {@code cgroup-root/cgroup-parent}, where
 * {@code cgroup-root} is the unified mount or a subtree delegated to this JVM's user). Memory and pids are required;
 * CPU is used where the controller is there. Where neither layout is writable, sandboxes get no cgroup.
 */
sealed interface CgroupDriver permits CgroupDriver.V1, CgroupDriver.V2 {
    Logger LOG = LoggerFactory.getLogger(CgroupDriver.class);
    /** The kernel's default CFS period (as Docker uses): the quota is the CPU share of each such period. */
    long CPU_PERIOD_MICROS = 100_000;
    /** Below this the kernel refuses a CFS quota. */
    long MIN_CPU_QUOTA_MICROS = 1_000;
    List<String> CONTROLLERS = List.of("memory", "pids", "cpu");

    /** The groups of a new sandbox, with its limits written; empty when they cannot be made. */
    Optional<SandboxCgroup> create(String sessionId, Limits limits);

    /**
     * Removes empty groups a crashed JVM left; busy ones (a live JVM's) cannot be removed and stay. A group younger
     * than {@code minAge} may be another JVM's sandbox whose launcher has not joined it yet, and stays too.
     */
    void removeStale(Duration minAge);

    /** Which controllers are used, for the log. */
    Set<String> controllers();

    static long cpuQuotaMicros(Limits limits) {
        return Math.max(MIN_CPU_QUOTA_MICROS, Math.round(limits.cpus() * CPU_PERIOD_MICROS));
    }

    /** v2 where {@code root} holds cgroup.controllers, else v1; empty where memory and pids cannot be used. */
    static Optional<CgroupDriver> detect(Path root, String parent) {
        return Files.isRegularFile(root.resolve("cgroup.controllers")) ? V2.detect(root, parent) : V1.detect(root, parent);
    }

    private static void write(Path file, String value) throws IOException {
        Files.writeString(file, value);
    }

    private static void removeEmptyChildren(Path parent, Duration minAge) {
        if (!Files.isDirectory(parent)) {
            return;
        }
        Instant bornBefore = Instant.now().minus(minAge);
        try (var children = Files.list(parent)) {
            children.filter(Files::isDirectory).forEach(dir -> {
                try {
                    // A cgroup directory's mtime is its creation: writing its files does not change it.
                    if (Files.getLastModifiedTime(dir).toInstant().isBefore(bornBefore)
                            && Files.readString(dir.resolve("cgroup.procs")).isBlank()) {
                        Files.deleteIfExists(dir);
                    }
                } catch (IOException ignored) {
                    // busy or already gone
                }
            });
        } catch (IOException ignored) {
            // nothing to clean
        }
    }

    /** cgroup v1: {@code root/memory/parent/ID}, {@code root/pids/parent/ID}, {@code root/cpu/parent/ID}. */
    record V1(Path root, String parent, Set<String> controllers) implements CgroupDriver {
        public V1 {
            controllers = Set.copyOf(controllers);
        }

        static Optional<CgroupDriver> detect(Path root, String parent) {
            Set<String> usable = CONTROLLERS.stream()
                    .filter(c -> Files.isDirectory(root.resolve(c)) && Files.isWritable(root.resolve(c)))
                    .collect(Collectors.toSet());
            if (!usable.containsAll(List.of("memory", "pids"))) {
                return Optional.empty();
            }
            if (!usable.contains("cpu")) {
                LOG.warn("the cgroup v1 cpu controller is not writable under {}: bubblewrap sandboxes get no CPU limit", root);
            }
            return Optional.of(new V1(root, parent, usable));
        }

        @Override
        public Optional<SandboxCgroup> create(String sessionId, Limits limits) {
            List<Path> groups = new ArrayList<>();
            Map<Path, String> binds = new LinkedHashMap<>();
            try {
                for (String controller : CONTROLLERS) {
                    if (!controllers.contains(controller)) {
                        continue;
                    }
                    Path group = Files.createDirectories(root.resolve(controller).resolve(parent).resolve(sessionId));
                    groups.add(group);
                    binds.put(group, "/sys/fs/cgroup/" + controller);
                    switch (controller) {
                        case "memory" -> {
                            write(group.resolve("memory.limit_in_bytes"), Long.toString(limits.memoryBytes()));
                            Path memsw = group.resolve("memory.memsw.limit_in_bytes");
                            if (Files.exists(memsw)) {
                                write(memsw, Long.toString(limits.memoryBytes())); // no swap beyond the limit
                            }
                        }
                        case "pids" -> write(group.resolve("pids.max"), Integer.toString(limits.pids()));
                        case "cpu" -> {
                            write(group.resolve("cpu.cfs_period_us"), Long.toString(CPU_PERIOD_MICROS));
                            write(group.resolve("cpu.cfs_quota_us"), Long.toString(cpuQuotaMicros(limits)));
                        }
                        default -> throw new IllegalStateException(controller);
                    }
                }
                return Optional.of(new SandboxCgroup(groups, binds));
            } catch (IOException e) {
                LOG.warn("cannot set up cgroups for sandbox {} ({}); it runs without them", sessionId, e.toString());
                groups.forEach(SandboxCgroup::removeQuietly);
                return Optional.empty();
            }
        }

        @Override
        public void removeStale(Duration minAge) {
            controllers.forEach(c -> removeEmptyChildren(root.resolve(c).resolve(parent), minAge));
        }
    }

    /** cgroup v2: {@code root/parent/ID}, with memory, pids and cpu enabled for the children of root and parent. */
    record V2(Path root, String parent, Set<String> controllers) implements CgroupDriver {
        public V2 {
            controllers = Set.copyOf(controllers);
        }

        static Optional<CgroupDriver> detect(Path root, String parent) {
            try {
                Set<String> available = words(root.resolve("cgroup.controllers"));
                Set<String> wanted = CONTROLLERS.stream().filter(available::contains).collect(Collectors.toSet());
                if (!wanted.containsAll(List.of("memory", "pids"))) {
                    LOG.warn("cgroup v2 at {} offers {} (memory and pids are needed): bubblewrap sandboxes get no cgroup",
                            root, available);
                    return Optional.empty();
                }
                Path parentDir = root.resolve(parent);
                if (!Files.isWritable(root) && !Files.isWritable(parentDir)) {
                    return Optional.empty();
                }
                Files.createDirectories(parentDir);
                enable(root, wanted);
                enable(parentDir, wanted);
                if (!wanted.contains("cpu")) {
                    LOG.warn("the cgroup v2 cpu controller is not delegated at {}: bubblewrap sandboxes get no CPU limit", root);
                }
                return Optional.of(new V2(root, parent, wanted));
            } catch (IOException e) {
                LOG.warn("cannot use cgroup v2 at {} ({}): bubblewrap sandboxes get no cgroup", root, e.toString());
                return Optional.empty();
            }
        }

        /** Lets {@code group}'s children use the controllers (a v2 group only offers what its parent enabled). */
        private static void enable(Path group, Set<String> controllers) throws IOException {
            Path control = group.resolve("cgroup.subtree_control");
            Set<String> enabled = Files.exists(control) ? words(control) : Set.of();
            List<String> missing = controllers.stream().filter(c -> !enabled.contains(c)).sorted().toList();
            if (!missing.isEmpty()) {
                write(control, missing.stream().map(c -> "+" + c).collect(Collectors.joining(" ")));
            }
        }

        private static Set<String> words(Path file) throws IOException {
            String text = Files.readString(file).trim();
            return text.isEmpty() ? Set.of() : new HashSet<>(Arrays.asList(text.split("\\s+")));
        }

        @Override
        public Optional<SandboxCgroup> create(String sessionId, Limits limits) {
            Path group = root.resolve(parent).resolve(sessionId);
            try {
                Files.createDirectories(group);
                write(group.resolve("memory.max"), Long.toString(limits.memoryBytes()));
                Path swap = group.resolve("memory.swap.max");
                if (Files.exists(swap)) {
                    write(swap, "0"); // as v1's memsw limit equal to the memory limit: no swap beyond it
                }
                write(group.resolve("pids.max"), Integer.toString(limits.pids()));
                if (controllers.contains("cpu")) {
                    write(group.resolve("cpu.max"), cpuQuotaMicros(limits) + " " + CPU_PERIOD_MICROS);
                }
                return Optional.of(new SandboxCgroup(List.of(group), Map.of(group, "/sys/fs/cgroup")));
            } catch (IOException e) {
                LOG.warn("cannot set up the cgroup of sandbox {} ({}); it runs without one", sessionId, e.toString());
                SandboxCgroup.removeQuietly(group);
                return Optional.empty();
            }
        }

        @Override
        public void removeStale(Duration minAge) {
            removeEmptyChildren(root.resolve(parent), minAge);
        }
    }
}
