package io.agentexec.node.cli;

import com.typesafe.config.Config;
import io.agentexec.cluster.ClusterSettings;
import io.agentexec.gateway.GatewaySettings;
import io.agentexec.node.Guardian;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;

/**
 * What {@code agentexec serve} says once its node is up: its name and roles, the backend, the journal, where the API
 * and the metrics listen, where the keys are. A few aligned lines on standard output for a person
 * ({@link LogFormat#HUMAN}); one log event whose fields are these for a collector ({@link LogFormat#JSON}).
 */
final class StartupSummary {
    private static final Logger log = LoggerFactory.getLogger("io.agentexec.node");

    private StartupSummary() {
    }

    static Map<String, String> of(Config config, Guardian.Node node) {
        GatewaySettings gateway = GatewaySettings.fromConfig(config);
        boolean cluster = gateway.backend() == GatewaySettings.BackendKind.CLUSTER;
        Map<String, String> s = new LinkedHashMap<>();
        s.put("node", ClusterSettings.nodeName(config));
        s.put("roles", cluster ? String.join(", ", config.getString("agentexec.cluster.roles").split("\\s*,\\s*"))
                : "gateway, worker (one JVM, no cluster)");
        s.put("backend", gateway.backend().name().toLowerCase(java.util.Locale.ROOT) + "; sandboxes "
                + config.getString("agentexec.sandbox.backend"));
        s.put("journal", cluster ? config.getString("agentexec.cluster.persistence.dialect") + " "
                + withoutSecrets(config.getString("agentexec.cluster.persistence.url"))
                : "none (engine backend: nothing outlives the process)");
        s.put("api", "http://" + gateway.host() + ":" + node.httpPort() + " (HTTP/1.1 and gRPC; conversations "
                + (node.conversationsAvailable() ? "on" : "off") + ")");
        s.put("metrics", node.gateway().metricsPort().map(p -> "http://" + gateway.metrics().host() + ":" + p + "/metrics")
                .orElse("no listener"));
        String keys = switch (gateway.authMode()) {
            case NONE -> "none: authentication is off (auth.mode = none, loopback only)";
            case API_KEYS -> cluster ? "in the journal's database (bin/agentexec tenant create|list|revoke|rotate)"
                    : "in " + gateway.keysFile().toAbsolutePath();
        };
        Path firstKey = gateway.firstKeyFile().toAbsolutePath();
        if (gateway.authMode() == GatewaySettings.AuthMode.API_KEYS && Files.exists(firstKey)) {
            keys += "; first key in " + firstKey;
        }
        s.put("keys", keys);
        return s;
    }

    static void print(Map<String, String> summary, LogFormat format, PrintStream out) {
        if (format == LogFormat.HUMAN) {
            out.println("agentexec node started");
            summary.forEach((k, v) -> out.printf("  %-8s %s%n", k, v));
            out.flush();
            return;
        }
        summary.forEach(MDC::put);
        try {
            log.info("agentexec node started");
        } finally {
            summary.keySet().forEach(MDC::remove);
        }
    }

    /** A JDBC URL without what may be a secret in it (a password parameter). */
    static String withoutSecrets(String url) {
        return url.replaceAll("(?i)(password|pwd)=[^;&]*", "$1=***");
    }
}
