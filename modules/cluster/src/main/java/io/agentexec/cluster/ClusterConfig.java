package io.agentexec.cluster;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Layered configuration: system properties over the given files (later files over earlier ones)
 * over application.conf over every module's reference.conf; {@code ${?ENV}} substitutions resolve
 * against the environment.
 */
public final class ClusterConfig {
    private ClusterConfig() {
    }

    public static Config load(List<Path> layers) {
        Config stacked = ConfigFactory.empty();
        for (Path layer : layers) {
            if (!Files.isRegularFile(layer)) {
                throw new IllegalArgumentException("configuration file not found: " + layer.toAbsolutePath());
            }
            stacked = ConfigFactory.parseFile(layer.toFile(), ConfigParseOptions.defaults().setAllowMissing(false))
                    .withFallback(stacked);
        }
        ConfigFactory.invalidateCaches();
        return ConfigFactory.systemProperties()
                .withFallback(stacked)
                .withFallback(ConfigFactory.defaultApplication())
                .withFallback(ConfigFactory.defaultReference())
                .resolve();
    }

    /** Overrides in HOCON text (tests, tools) over the given layers. */
    public static Config load(String overrides, List<Path> layers) {
        Config stacked = ConfigFactory.empty();
        for (Path layer : layers) {
            if (!Files.isRegularFile(layer)) {
                throw new IllegalArgumentException("configuration file not found: " + layer.toAbsolutePath());
            }
            stacked = ConfigFactory.parseFile(layer.toFile()).withFallback(stacked);
        }
        ConfigFactory.invalidateCaches();
        return ConfigFactory.parseString(overrides)
                .withFallback(ConfigFactory.systemProperties())
                .withFallback(stacked)
                .withFallback(ConfigFactory.defaultApplication())
                .withFallback(ConfigFactory.defaultReference())
                .resolve();
    }
}
