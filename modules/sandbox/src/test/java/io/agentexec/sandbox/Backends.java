package io.agentexec.sandbox;

import io.agentexec.sandbox.EngineSettings.BackendChoice;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.UnaryOperator;

/**
 * One engine per backend for the whole test run: real Docker and real bubblewrap, never a mock.
 * Closed (and their containers removed) when the JVM running the tests exits.
 */
final class Backends {
    private static final Map<BackendChoice, SandboxEngine> ENGINES = new EnumMap<>(BackendChoice.class);
    /** Engines with other settings (zygotes off, ...), by a name the tests give them and the backend. */
    private static final Map<String, SandboxEngine> VARIANTS = new LinkedHashMap<>();

    private Backends() {
    }

    static synchronized SandboxEngine engine(BackendChoice choice) {
        return ENGINES.computeIfAbsent(choice, c -> {
            SandboxEngine engine = SandboxEngine.start(EngineSettings.load().withBackend(c));
            Runtime.getRuntime().addShutdownHook(new Thread(engine::close));
            return engine;
        });
    }

    /**
     * An engine of this backend whose settings {@code change} made from the defaults; one per {@code name} and
     * backend for the whole run, closed with the others.
     */
    static synchronized SandboxEngine variant(String name, BackendChoice choice, UnaryOperator<EngineSettings> change) {
        return VARIANTS.computeIfAbsent(name + "/" + choice, k -> {
            SandboxEngine engine = SandboxEngine.start(change.apply(EngineSettings.load().withBackend(choice)));
            Runtime.getRuntime().addShutdownHook(new Thread(engine::close));
            return engine;
        });
    }

    /** Every block a plain start: what the zygote path is compared with. */
    static SandboxEngine plain(BackendChoice choice) {
        return variant("plain", choice, s -> s.withZygote(s.zygote().withEnabled(false)));
    }

    /** Closes every engine; a later call to {@link #engine} starts a new one. */
    static synchronized void closeAll() {
        ENGINES.values().forEach(SandboxEngine::close);
        ENGINES.clear();
        VARIANTS.values().forEach(SandboxEngine::close);
        VARIANTS.clear();
    }

    static SandboxEngine docker() {
        return engine(BackendChoice.DOCKER);
    }

    static SandboxEngine bwrap() {
        return engine(BackendChoice.BWRAP);
    }
}
