package io.agentexec.node.cli;

import com.typesafe.config.Config;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Locale;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * How {@code agentexec serve} talks ({@code agentexec.logging.format}): {@link #HUMAN}, short lines for a person at a
 * terminal (a start-up summary on standard output, then warnings and errors), or {@link #JSON}, one JSON object per
 * line for a log collector (the summary and every console line become log events). {@code auto} picks HUMAN when
 * standard output is a terminal.
 */
enum LogFormat {
    HUMAN("agentexec-human-logback.xml"),
    JSON("agentexec-gateway-logback.xml");

    private final String logbackFile;

    LogFormat(String logbackFile) {
        this.logbackFile = logbackFile;
    }

    String logbackFile() {
        return logbackFile;
    }

    /** {@code agentexec.logging.format} of the node's configuration; {@code terminal}: whether stdout is one. */
    static LogFormat of(Config config, boolean terminal) {
        String value = config.getString("agentexec.logging.format").trim().toLowerCase(Locale.ROOT);
        return switch (value) {
            case "auto" -> terminal ? HUMAN : JSON;
            case "human" -> HUMAN;
            case "json" -> JSON;
            default -> throw new UsageException("agentexec.logging.format (AGENTEXEC_LOG_FORMAT) must be auto, human or "
                    + "json; got '" + value + "'");
        };
    }

    /**
     * Where the node's console lines go: standard output as they are (HUMAN), or each line an INFO event of the
     * JSON log (JSON), so that a collector reads JSON only.
     */
    PrintStream console(PrintStream out) {
        if (this == HUMAN) {
            return out;
        }
        Logger log = LoggerFactory.getLogger("io.agentexec.node");
        return new PrintStream(new OutputStream() {
            private final ByteArrayOutputStream line = new ByteArrayOutputStream();

            @Override
            public synchronized void write(int b) {
                if (b == '\n') {
                    String text = line.toString(StandardCharsets.UTF_8).stripTrailing();
                    line.reset();
                    if (!text.isBlank()) {
                        log.info(text.strip());
                    }
                } else {
                    line.write(b);
                }
            }
        }, true, StandardCharsets.UTF_8);
    }
}
