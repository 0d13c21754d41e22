package io.agentexec.gateway;

import com.typesafe.config.Config;
import io.agentexec.gateway.tenant.TenantPolicy;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.OptionalLong;

/** Everything the gateway reads from {@code agentexec.gateway} (see reference.conf). */
public record GatewaySettings(
        String host,
        int port,
        Optional<Integer> grpcPort,
        BackendKind backend,
        AuthMode authMode,
        Path keysFile,
        boolean generateFirstKey,
        String firstTenant,
        TenantPolicy tenantDefaults,
        Map<String, Profile> profiles,
        List<String> allowedImages,
        long maxBodyBytes,
        long maxFileReadBytes,
        Duration heartbeatInterval,
        Duration admissionGrace,
        Duration sseKeepAlive,
        Duration executionRetention,
        int replayChunks,
        int engineSlots,
        int engineQueue,
        Duration drainTimeout,
        Duration askTimeout) {

    public enum BackendKind { CLUSTER, ENGINE }

    public enum AuthMode { API_KEYS, NONE }

    /** A named preset: an image and limits that a request's own limits override. */
    public record Profile(String name, Optional<String> image, OptionalDouble timeoutSeconds, OptionalLong memoryMb) {
        public Profile {
            Objects.requireNonNull(name, "name");
            Objects.requireNonNull(image, "image");
        }
    }

    public GatewaySettings {
        Objects.requireNonNull(host, "host");
        profiles = Map.copyOf(profiles);
        allowedImages = List.copyOf(allowedImages);
    }

    public static GatewaySettings fromConfig(Config root) {
        Config c = root.getConfig("agentexec.gateway");
        int grpcPort = c.getInt("grpc.port");
        Map<String, Profile> profiles = new LinkedHashMap<>();
        Config p = c.getConfig("profiles");
        for (String name : p.root().keySet()) {
            Config one = p.getConfig(name);
            profiles.put(name, new Profile(name,
                    one.hasPath("image") ? Optional.of(one.getString("image")) : Optional.empty(),
                    one.hasPath("timeout-seconds") ? OptionalDouble.of(one.getDouble("timeout-seconds")) : OptionalDouble.empty(),
                    one.hasPath("memory-mb") ? OptionalLong.of(one.getLong("memory-mb")) : OptionalLong.empty()));
        }
        return new GatewaySettings(
                c.getString("host"),
                c.getInt("port"),
                grpcPort < 0 ? Optional.empty() : Optional.of(grpcPort),
                BackendKind.valueOf(c.getString("backend").trim().toUpperCase(Locale.ROOT)),
                AuthMode.valueOf(c.getString("auth.mode").trim().toUpperCase(Locale.ROOT).replace('-', '_')),
                Path.of(c.getString("auth.keys-file")),
                c.getBoolean("auth.generate-first-key"),
                c.getString("auth.first-tenant"),
                TenantPolicy.fromConfig(c.getConfig("tenant-defaults")),
                profiles,
                c.getStringList("allowed-images"),
                c.getBytes("http.max-body-bytes"),
                c.getBytes("http.max-file-read-bytes"),
                c.getDuration("http.heartbeat-interval"),
                c.getDuration("http.admission-grace"),
                c.getDuration("http.sse-keepalive"),
                c.getDuration("executions.retention"),
                c.getInt("executions.replay-chunks"),
                c.getInt("engine.slots"),
                c.getInt("engine.queue"),
                c.getDuration("shutdown.drain-timeout"),
                c.getDuration("ask-timeout"));
    }
}
