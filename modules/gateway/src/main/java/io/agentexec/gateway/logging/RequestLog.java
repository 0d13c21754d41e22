package io.agentexec.gateway.logging;

import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.MDC;

/**
 * Structured log lines with request, tenant and execution ids. Handlers run on many threads, so
 * the ids are set around each line rather than left in a thread's MDC.
 */
public final class RequestLog {
    private RequestLog() {
    }

    public static void info(Logger log, Map<String, String> ids, String message, Object... args) {
        if (!log.isInfoEnabled()) {
            return;
        }
        with(ids, () -> log.info(message, args));
    }

    public static void warn(Logger log, Map<String, String> ids, String message, Object... args) {
        with(ids, () -> log.warn(message, args));
    }

    private static void with(Map<String, String> ids, Runnable line) {
        Map<String, String> previous = MDC.getCopyOfContextMap();
        try {
            ids.forEach(MDC::put);
            line.run();
        } finally {
            if (previous == null) {
                MDC.clear();
            } else {
                MDC.setContextMap(previous);
            }
        }
    }
}
