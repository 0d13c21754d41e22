package io.agentexec.sandbox;

import io.agentexec.sandbox.EngineSettings.BackendChoice;
import java.util.EnumMap;
import java.util.Map;

/**
 * One engine per backend for the whole test run: real Docker and real bubblewrap, never a mock.
 * Closed (and their containers removed) when the JVM running the tests exits.
 */
final class Backends {
    private static final Map<BackendChoice, SandboxEngine> ENGINES = new EnumMap<>(BackendChoice.class);

    private Backends() {
    }

    static synchronized SandboxEngine engine(BackendChoice choice) {
        return ENGINES.computeIfAbsent(choice, c -> {
            SandboxEngine engine = SandboxEngine.start(EngineSettings.load().withBackend(c));
            Runtime.getRuntime().addShutdownHook(new Thread(engine::close));
            return engine;
        });
    }

    /** Closes every engine; a later call to {@link #engine} starts a new one. */
    static synchronized void closeAll() {
        ENGINES.values().forEach(SandboxEngine::close);
        ENGINES.clear();
    }

    static SandboxEngine docker() {
        return engine(BackendChoice.DOCKER);
    }

    static SandboxEngine bwrap() {
        return engine(BackendChoice.BWRAP);
    }
}
