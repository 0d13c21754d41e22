package io.agentexec.bench;

import com.typesafe.config.ConfigFactory;
import java.nio.file.Path;

/** Journal URLs for benchmarks, kept in step with what the shipped configuration uses. */
final class Journals {
    private static final String LOCAL_CONF = "config/local.conf";

    private Journals() {
    }

    /**
     * An H2 file journal at {@code file} with the options {@code config/local.conf} gives its own
     * (today {@code DATABASE_TO_UPPER=false;WRITE_DELAY=0}), so that a benchmark measures the shipped durability.
     */
    static String localH2Url(Path file) {
        String url = ConfigFactory.parseFile(Path.of(LOCAL_CONF).toFile()).resolve()
                .getString("agentexec.cluster.persistence.url");
        if (!url.startsWith("jdbc:h2:file:")) {
            throw new IllegalStateException(LOCAL_CONF + " no longer names an H2 file journal: " + url);
        }
        int options = url.indexOf(';');
        return "jdbc:h2:file:" + file.toAbsolutePath() + (options < 0 ? "" : url.substring(options));
    }
}
