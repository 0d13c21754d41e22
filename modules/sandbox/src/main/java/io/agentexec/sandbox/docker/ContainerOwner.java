package io.agentexec.sandbox.docker;

import io.agentexec.sandbox.backend.NodeOwner;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Who made a container: host, pid and start time of the JVM, and, for an engine working for a cluster node, that
 * node's address, uid and name ({@link NodeOwner}), written into labels so that a later JVM, or another node sharing
 * the daemon, can tell a leftover of a dead owner from a container that a live one still uses.
 */
record ContainerOwner(String host, long pid, long startMillis, Optional<NodeOwner> node) {
    static final String LABEL = "io.agentexec.owner";
    static final String NODE_ADDRESS_LABEL = "io.agentexec.node.address";
    static final String NODE_UID_LABEL = "io.agentexec.node.uid";
    static final String NODE_NAME_LABEL = "io.agentexec.node.name";

    ContainerOwner {
        node = node == null ? Optional.empty() : node;
    }

    ContainerOwner(String host, long pid, long startMillis) {
        this(host, pid, startMillis, Optional.empty());
    }

    static ContainerOwner current() {
        return current(Optional.empty());
    }

    /** This JVM, working for {@code node} when it is a cluster node's engine. */
    static ContainerOwner current(Optional<NodeOwner> node) {
        ProcessHandle self = ProcessHandle.current();
        return new ContainerOwner(hostName(), self.pid(),
                self.info().startInstant().map(java.time.Instant::toEpochMilli).orElse(0L), node);
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

    /** The owner a container's labels name: the JVM, and the node when its labels are there and readable. */
    static Optional<ContainerOwner> fromLabels(Map<String, String> labels) {
        Map<String, String> all = labels == null ? Map.of() : labels;
        return parse(all.get(LABEL)).map(jvm -> new ContainerOwner(jvm.host, jvm.pid, jvm.startMillis, nodeOf(all)));
    }

    private static Optional<NodeOwner> nodeOf(Map<String, String> labels) {
        String address = labels.get(NODE_ADDRESS_LABEL);
        String uid = labels.get(NODE_UID_LABEL);
        if (address == null || address.isBlank() || uid == null) {
            return Optional.empty();
        }
        try {
            return Optional.of(new NodeOwner(address, Long.parseLong(uid), labels.getOrDefault(NODE_NAME_LABEL, "")));
        } catch (NumberFormatException e) {
            return Optional.empty();
        }
    }

    String label() {
        return host + "/" + pid + "/" + startMillis;
    }

    /** Every owner label of a container made by this owner. */
    Map<String, String> labels() {
        Map<String, String> labels = new LinkedHashMap<>();
        labels.put(LABEL, label());
        node.ifPresent(n -> {
            labels.put(NODE_ADDRESS_LABEL, n.address());
            labels.put(NODE_UID_LABEL, Long.toString(n.uid()));
            labels.put(NODE_NAME_LABEL, n.name());
        });
        return labels;
    }

    /** The same JVM (host, pid and start time), whichever node it works for. */
    boolean sameJvm(ContainerOwner other) {
        return host.equals(other.host) && pid == other.pid && startMillis == other.startMillis;
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
