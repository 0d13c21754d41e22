package io.agentexec.gateway;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.OutputStreamAppender;
import com.fasterxml.jackson.databind.JsonNode;
import io.agentexec.gateway.logging.JsonLogLayout;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.LoggerFactory;

/** The node's log lines, as the JSON layout writes them, while it is open. */
final class LogCapture implements AutoCloseable {
    private final ByteArrayOutputStream captured = new ByteArrayOutputStream();
    private final OutputStreamAppender<ILoggingEvent> appender = new OutputStreamAppender<>();
    private final Logger root;

    LogCapture() {
        LoggerContext context = (LoggerContext) LoggerFactory.getILoggerFactory();
        JsonLogLayout layout = new JsonLogLayout();
        layout.setContext(context);
        layout.start();
        appender.setContext(context);
        appender.setLayout(layout);
        appender.setOutputStream(captured);
        appender.start();
        root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        root.addAppender(appender);
    }

    /** Every line so far; each must parse as one JSON object. */
    List<JsonNode> lines() {
        String text;
        synchronized (captured) {
            text = captured.toString(StandardCharsets.UTF_8);
        }
        List<JsonNode> lines = new ArrayList<>();
        for (String line : text.split("\n")) {
            if (!line.isBlank()) {
                try {
                    lines.add(TestNode.JSON.readTree(line));
                } catch (IOException e) {
                    throw new UncheckedIOException("not a JSON line: " + line, e);
                }
            }
        }
        return lines;
    }

    @Override
    public void close() {
        root.detachAppender(appender);
        appender.stop();
    }
}
