package io.agentexec.sandbox.docker;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Optional;

/**
 * Who made a container: host, pid and start time of the JVM, written into a label so that a later
 * JVM can tell a leftover of a crashed process from a container that a live one still uses.
 */
record ContainerOwner(String host, long pid, long startMillis) {
    static final String LABEL = "io.agentexec.owner";

    static ContainerOwner current() {
        ProcessHandle self = ProcessHandle.current();
        return new ContainerOwner(hostName(), self.pid(),
                self.info().startInstant().map(java.time.Instant::toEpochMilli).orElse(0L));
    }

    static Optional<ContainerOwner> parse(String label) {
        String[] parts = label == null ? new String[0] : label.split("/");
        if (parts.length != 3) {
            return Optional.empty();
        }
        try {
            return Optional.of(new ContainerOwner(parts[0], Long.parseLong(parts[1]), Long.parseLong(parts[2])));
        } catch (NumberFormatException e) {
            return Optional.empty();
        }
    }

    String label() {
        return host + "/" + pid + "/" + startMillis;
    }

    /** True when this owner is a process on this host that no longer runs. */
    boolean isDeadOnThisHost() {
        if (!host.equals(hostName())) {
            return false;
        }
        return ProcessHandle.of(pid)
                .map(h -> h.info().startInstant().map(java.time.Instant::toEpochMilli).orElse(-1L) != startMillis)
                .orElse(true);
    }

    private static String hostName() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            return "localhost";
        }
    }
}
