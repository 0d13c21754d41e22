package io.agentexec.cluster.executors;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.agentexec.cluster.dispatch.EntityFixture;
import java.util.List;
import java.util.Optional;
import org.apache.pekko.Done;
import org.apache.pekko.actor.testkit.typed.javadsl.ActorTestKit;
import org.apache.pekko.persistence.testkit.javadsl.EventSourcedBehaviorTestKit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/** A sandbox's executor defaults: kept once, answered to every node, and still there after a restart. */
class SandboxDefaultsEntityTest {
    private static final ActorTestKit testKit = EntityFixture.testKit();

    @AfterAll
    static void stop() {
        testKit.shutdownTestKit();
    }

    private static EventSourcedBehaviorTestKit<SandboxDefaultsEntity.Command, SandboxDefaultsEntity.Kept,
            Optional<ExecutorOptions>> entity(String id) {
        return EventSourcedBehaviorTestKit.create(testKit.system(), SandboxDefaultsEntity.create(id),
                EntityFixture.serialization());
    }

    @Test
    void aSandboxWithoutDefaultsAnswersNone() {
        var kit = entity(EntityFixture.key("tenant.sbx"));
        var answer = kit.<SandboxDefaultsEntity.Answer>runCommand(SandboxDefaultsEntity.Get::new);
        assertEquals(Optional.empty(), answer.reply().options());
        assertEquals(List.of(), answer.events());
    }

    @Test
    void theDefaultsKeptAtCreationAreAnsweredAndSurviveARestart() {
        var kit = entity(EntityFixture.key("tenant.sbx"));
        ExecutorOptions options = ExecutorOptions.none().withPolicy(CodePolicy.patterns(List.of("rm -rf")))
                .withRetries(3).withCache(true).withExecutor("analyst").withProfile("simple");
        var kept = kit.<Done>runCommand(r -> new SandboxDefaultsEntity.Keep(options, r));
        assertEquals(List.of(new SandboxDefaultsEntity.Kept(options)), kept.events());
        kit.restart();
        var answer = kit.<SandboxDefaultsEntity.Answer>runCommand(SandboxDefaultsEntity.Get::new);
        assertEquals(Optional.of(options), answer.reply().options());
    }
}
