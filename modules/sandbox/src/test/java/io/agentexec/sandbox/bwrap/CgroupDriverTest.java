package io.agentexec.sandbox.bwrap;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.model.Limits;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the cgroup drivers write. The layouts are laid out in a temporary directory (a cgroup file system creates a
 * group's files on mkdir; here the test creates the ones the driver reads), because this machine's cgroups are v1
 * hybrid: the v2 driver is checked against the real thing only where a v2 hierarchy is mounted (skipped otherwise).
 * The v1 driver runs for real in every bubblewrap test (EngineBehaviourTest's CPU quota, memory and fork bombs).
 */
class CgroupDriverTest {
    private static final Limits LIMITS = EngineSettings.load().defaultLimits()
            .withMemoryBytes(64L * 1024 * 1024).withPids(32).withCpus(0.5);

    @Test
    void v1WritesMemoryPidsAndCpuPerController(@TempDir Path root) throws IOException {
        for (String controller : List.of("memory", "pids", "cpu")) {
            Files.createDirectories(root.resolve(controller).resolve("agentexec").resolve("sbx-1"));
        }
        Files.writeString(root.resolve("memory/agentexec/sbx-1/memory.memsw.limit_in_bytes"), "max");
        CgroupDriver driver = CgroupDriver.detect(root, "agentexec").orElseThrow();
        assertInstanceOf(CgroupDriver.V1.class, driver);
        assertEquals(Set.of("memory", "pids", "cpu"), driver.controllers());
        SandboxCgroup group = driver.create("sbx-1", LIMITS).orElseThrow();
        Path memory = root.resolve("memory/agentexec/sbx-1");
        Path pids = root.resolve("pids/agentexec/sbx-1");
        Path cpu = root.resolve("cpu/agentexec/sbx-1");
        assertEquals(List.of(memory, pids, cpu), group.groups());
        assertEquals(Map.of(memory, "/sys/fs/cgroup/memory", pids, "/sys/fs/cgroup/pids", cpu, "/sys/fs/cgroup/cpu"),
                group.binds());
        assertEquals(Long.toString(64L * 1024 * 1024), Files.readString(memory.resolve("memory.limit_in_bytes")));
        assertEquals(Long.toString(64L * 1024 * 1024), Files.readString(memory.resolve("memory.memsw.limit_in_bytes")));
        assertEquals("32", Files.readString(pids.resolve("pids.max")));
        assertEquals("100000", Files.readString(cpu.resolve("cpu.cfs_period_us")));
        assertEquals("50000", Files.readString(cpu.resolve("cpu.cfs_quota_us")));
    }

    @Test
    void v1WithoutTheCpuControllerStillLimitsMemoryAndPids(@TempDir Path root) throws IOException {
        Files.createDirectories(root.resolve("memory"));
        Files.createDirectories(root.resolve("pids"));
        CgroupDriver driver = CgroupDriver.detect(root, "agentexec").orElseThrow();
        assertEquals(Set.of("memory", "pids"), driver.controllers());
        SandboxCgroup group = driver.create("sbx-2", LIMITS).orElseThrow();
        assertEquals(2, group.groups().size());
        assertFalse(Files.exists(root.resolve("memory/agentexec/sbx-2/memory.memsw.limit_in_bytes")),
                "memsw is only written where the kernel offers it");
    }

    @Test
    void noMemoryOrPidsControllerMeansNoCgroups(@TempDir Path root) throws IOException {
        Files.createDirectories(root.resolve("cpu"));
        assertTrue(CgroupDriver.detect(root, "agentexec").isEmpty());
    }

    @Test
    void v2EnablesControllersForTheParentAndWritesOneGroup(@TempDir Path root) throws IOException {
        Files.writeString(root.resolve("cgroup.controllers"), "cpuset cpu io memory hugetlb pids rdma misc\n");
        Files.writeString(root.resolve("cgroup.subtree_control"), "memory\n");
        CgroupDriver driver = CgroupDriver.detect(root, "agentexec").orElseThrow();
        assertInstanceOf(CgroupDriver.V2.class, driver);
        assertEquals(Set.of("memory", "pids", "cpu"), driver.controllers());
        assertEquals("+cpu +pids", Files.readString(root.resolve("cgroup.subtree_control")),
                "only what is not enabled yet");
        assertEquals("+cpu +memory +pids", Files.readString(root.resolve("agentexec/cgroup.subtree_control")));

        Path group = root.resolve("agentexec/sbx-3");
        Files.createDirectories(group);
        Files.writeString(group.resolve("memory.swap.max"), "max");
        SandboxCgroup cgroup = driver.create("sbx-3", LIMITS).orElseThrow();
        assertEquals(List.of(group), cgroup.groups());
        assertEquals(Map.of(group, "/sys/fs/cgroup"), cgroup.binds());
        assertEquals(Long.toString(64L * 1024 * 1024), Files.readString(group.resolve("memory.max")));
        assertEquals("0", Files.readString(group.resolve("memory.swap.max")));
        assertEquals("32", Files.readString(group.resolve("pids.max")));
        assertEquals("50000 100000", Files.readString(group.resolve("cpu.max")));
    }

    @Test
    void v2WithoutDelegatedCpuLimitsMemoryAndPidsOnly(@TempDir Path root) throws IOException {
        Files.writeString(root.resolve("cgroup.controllers"), "memory pids\n");
        CgroupDriver driver = CgroupDriver.detect(root, "agentexec").orElseThrow();
        assertEquals(Set.of("memory", "pids"), driver.controllers());
        SandboxCgroup cgroup = driver.create("sbx-4", LIMITS).orElseThrow();
        assertFalse(Files.exists(cgroup.groups().get(0).resolve("cpu.max")));
    }

    @Test
    void v2WithoutMemoryOrPidsMeansNoCgroups(@TempDir Path root) throws IOException {
        Files.writeString(root.resolve("cgroup.controllers"), "cpu io\n");
        assertTrue(CgroupDriver.detect(root, "agentexec").isEmpty());
    }

    @Test
    void aTinyCpuShareStillGetsTheKernelsMinimumQuota() {
        assertEquals(1_000, CgroupDriver.cpuQuotaMicros(LIMITS.withCpus(0.001)));
        assertEquals(200_000, CgroupDriver.cpuQuotaMicros(LIMITS.withCpus(2)));
    }

    /** On this machine's cgroups (where they are writable): which leftovers a starting engine removes. */
    @Test
    void onlyEmptyGroupsOlderThanTheStartTimeoutAreStale() throws IOException {
        Path root = Path.of("/sys/fs/cgroup");
        String parent = "agentexec-stale-test-" + ProcessHandle.current().pid();
        CgroupDriver driver = CgroupDriver.detect(root, parent).orElse(null);
        Assumptions.assumeTrue(driver != null, "skipped: no writable memory and pids cgroups here");
        SandboxCgroup young = driver.create("sbx-young", LIMITS).orElseThrow();
        try {
            driver.removeStale(Duration.ofMinutes(1));
            young.groups().forEach(g -> assertTrue(Files.isDirectory(g), g + ": may be a sandbox whose launcher has not joined yet"));
            driver.removeStale(Duration.ZERO);
            young.groups().forEach(g -> assertFalse(Files.exists(g), g + ": empty and old enough, so stale"));
        } finally {
            young.close();
            young.groups().forEach(g -> SandboxCgroup.removeQuietly(g.getParent()));
        }
    }

    /** On a machine that mounts cgroup v2 at /sys/fs/cgroup: a real group with the limits in force. */
    @Test
    void v2OnThisMachine() throws IOException {
        Path root = Path.of("/sys/fs/cgroup");
        Assumptions.assumeTrue(Files.isRegularFile(root.resolve("cgroup.controllers")),
                "skipped: /sys/fs/cgroup is not a cgroup v2 mount here (cgroup v1 hybrid); the v2 driver is covered "
                        + "by the unit tests above");
        CgroupDriver driver = CgroupDriver.detect(root, "agentexec-test").orElse(null);
        Assumptions.assumeTrue(driver != null, "skipped: cgroup v2 is mounted but memory and pids are not delegated to this user");
        SandboxCgroup group = driver.create("sbx-v2-test", LIMITS).orElseThrow();
        try {
            Path dir = group.groups().get(0);
            assertEquals(Long.toString(64L * 1024 * 1024), Files.readString(dir.resolve("memory.max")).trim());
            assertEquals("32", Files.readString(dir.resolve("pids.max")).trim());
            if (driver.controllers().contains("cpu")) {
                assertEquals("50000 100000", Files.readString(dir.resolve("cpu.max")).trim());
            }
        } finally {
            group.close();
            SandboxCgroup.removeQuietly(root.resolve("agentexec-test"));
        }
    }
}
