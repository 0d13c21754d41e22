package io.agentexec.cluster;

import java.util.Locale;

/** What a node does: gateways host the sharded entities and take requests, workers run code. */
public enum NodeRole {
    GATEWAY, WORKER;

    /** The name used in {@code pekko.cluster.roles}. */
    public String roleName() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static NodeRole parse(String text) {
        return switch (text.trim().toLowerCase(Locale.ROOT)) {
            case "gateway" -> GATEWAY;
            case "worker" -> WORKER;
            default -> throw new IllegalArgumentException("unknown node role '" + text + "' (gateway, worker)");
        };
    }
}
