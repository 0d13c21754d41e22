package io.agentexec.node;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigIncludeContext;
import com.typesafe.config.ConfigIncluder;
import com.typesafe.config.ConfigIncluderFile;
import com.typesafe.config.ConfigObject;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigParseable;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * Where every command's configuration comes from, and its one rule: a file that is named must be there (issue 12: a
 * wrong path silently fell back to the defaults, and a pod formed a one-node cluster of its own).
 *
 * <p>The file, first found of: the command line ({@code serve FILE}, {@code --config FILE}), {@code AGENTEXEC_CONFIG},
 * Typesafe Config's {@code -Dconfig.file}. It is layered over {@link ConfigFactory#load()} (system properties,
 * application.conf, the modules' reference.conf with their environment variables), as {@code serve FILE} always
 * did. Without one, the defaults alone. A file named but absent, an {@code include} inside it naming a file that is
 * absent (HOCON would skip it silently), or a file that does not parse is a {@link ConfigFileException}.
 */
public final class NodeConfig {
    /** Names the configuration file when the command line does not. */
    public static final String ENVIRONMENT_VARIABLE = "AGENTEXEC_CONFIG";
    /** Typesafe Config's own system property for the application's file. */
    private static final String SYSTEM_PROPERTY = "config.file";
    /** What an extensionless {@code include "name"} may resolve to (HOCON's rule). */
    private static final List<String> INCLUDE_EXTENSIONS = List.of(".conf", ".json", ".properties");

    private NodeConfig() {
    }

    /** A configuration file that is not there or cannot be read; the message names it and who named it. */
    public static final class ConfigFileException extends RuntimeException {
        ConfigFileException(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /**
     * The configuration for a command.
     *
     * @param fromCommandLine the file the command line names, if any
     * @param env             the process environment (for {@value #ENVIRONMENT_VARIABLE})
     */
    public static Config load(Optional<Path> fromCommandLine, Map<String, String> env) {
        Optional<Path> file;
        String namedBy;
        if (fromCommandLine.isPresent()) {
            file = fromCommandLine;
            namedBy = "the command line";
        } else if (env.get(ENVIRONMENT_VARIABLE) != null && !env.get(ENVIRONMENT_VARIABLE).isBlank()) {
            file = Optional.of(Path.of(env.get(ENVIRONMENT_VARIABLE)));
            namedBy = ENVIRONMENT_VARIABLE;
        } else {
            file = Optional.ofNullable(System.getProperty(SYSTEM_PROPERTY)).map(Path::of);
            namedBy = "-D" + SYSTEM_PROPERTY;
        }
        Optional<Config> parsed = file.map(f -> parse(f, namedBy));
        boolean loadedByDefault = file.isPresent() && namedBy.startsWith("-D");
        try {
            // -Dconfig.file is part of ConfigFactory.load() already: it was parsed above only to hold it to the rules
            Config defaults = ConfigFactory.load();
            return parsed.filter(p -> !loadedByDefault).map(p -> p.withFallback(defaults).resolve()).orElse(defaults);
        } catch (ConfigException e) {
            throw new ConfigFileException("the configuration does not resolve: " + oneLine(e), e);
        }
    }

    /** Parses one file, its includes held to the same rule; the message says which file and who named it. */
    static Config parse(Path file, String namedBy) {
        if (!Files.isRegularFile(file)) {
            throw new ConfigFileException("config file " + file + " (named by " + namedBy + ") "
                    + (Files.exists(file) ? "is not a regular file" : "does not exist"), null);
        }
        try {
            return ConfigFactory.parseFile(file.toFile(), ConfigParseOptions.defaults().setAllowMissing(false)
                    .setIncluder(new RequiredIncludes(file)));
        } catch (ConfigFileException e) {
            throw e;
        } catch (ConfigException e) {
            throw new ConfigFileException("cannot read config file " + file + " (named by " + namedBy + "): "
                    + oneLine(e), e);
        }
    }

    private static String oneLine(Throwable e) {
        return String.valueOf(e.getMessage()).replaceAll("\\s*\\R\\s*", " ");
    }

    /**
     * Makes {@code include "name"} and {@code include file("name")} behave as {@code include required(...)}: HOCON
     * skips a missing include silently, which turns a typo into a node running on the defaults.
     */
    private static final class RequiredIncludes implements ConfigIncluder, ConfigIncluderFile {
        private final Path including;
        private final ConfigIncluder fallback;

        RequiredIncludes(Path including) {
            this(including, null);
        }

        private RequiredIncludes(Path including, ConfigIncluder fallback) {
            this.including = including;
            this.fallback = fallback;
        }

        @Override
        public ConfigIncluder withFallback(ConfigIncluder value) {
            return fallback == value ? this : new RequiredIncludes(including, value);
        }

        @Override
        public ConfigObject include(ConfigIncludeContext context, String what) {
            ConfigObject included = fallback.include(context, what);
            if (included.isEmpty() && !exists(context, what)) {
                throw missing(context, what);
            }
            return included;
        }

        @Override
        public ConfigObject includeFile(ConfigIncludeContext context, File what) {
            if (!what.isFile()) {
                throw missing(context, what.getPath());
            }
            return ((ConfigIncluderFile) fallback).includeFile(context, what);
        }

        /** Whether the include names a file that is there (HOCON tries the known extensions on a bare name). */
        private static boolean exists(ConfigIncludeContext context, String what) {
            if (readable(context, what)) {
                return true;
            }
            return INCLUDE_EXTENSIONS.stream().anyMatch(extension -> readable(context, what + extension));
        }

        private static boolean readable(ConfigIncludeContext context, String name) {
            ConfigParseable source = context.relativeTo(name);
            if (source == null) {
                return false;
            }
            try {
                source.parse(context.parseOptions().setAllowMissing(false));
                return true;
            } catch (ConfigException.IO e) {
                return false;
            }
        }

        private ConfigFileException missing(ConfigIncludeContext context, String what) {
            Path parent = including.toAbsolutePath().getParent();
            String where = parent == null || Path.of(what).isAbsolute() ? what : parent.resolve(what).toString();
            return new ConfigFileException("config file " + where + ", included from " + including
                    + ", does not exist (an include names a file that must be there)", null);
        }
    }
}
