package io.agentexec.sandbox;

import io.agentexec.sandbox.EngineSettings.BackendChoice;

/** Started as a separate JVM by {@link CrashRecoveryTest}: opens a Docker session, says its id, and waits to be killed. */
public final class SessionHolderMain {
    private SessionHolderMain() {
    }

    public static void main(String[] args) throws InterruptedException {
        EngineSettings settings = EngineSettings.load().withBackend(BackendChoice.DOCKER);
        SandboxEngine engine = SandboxEngine.start(settings.withDocker(settings.docker().withWarmPoolSize(0)));
        SandboxSession session = engine.openSession("python", engine.defaultLimits());
        System.out.println("SESSION " + session.id());
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
