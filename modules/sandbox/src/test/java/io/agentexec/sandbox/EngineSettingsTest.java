package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.language.Language;
import io.agentexec.sandbox.language.LanguageTable;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class EngineSettingsTest {
    @Test
    void theDefaultsAreTheHardenedOnes() {
        EngineSettings s = EngineSettings.load();
        assertEquals(BackendChoice.AUTO, s.backend());
        assertEquals("none", s.docker().defaults().networkMode());
        assertTrue(s.docker().defaults().readOnlyRootFilesystem());
        assertEquals(List.of("ALL"), s.docker().defaults().capDrop());
        assertEquals(Duration.ofSeconds(60), s.defaultLimits().timeout());
        assertEquals(List.of(), s.forbiddenPatterns());
    }

    /** The configured default user goes through the same parser as --user: a root spelling stops the start. */
    @Test
    void aConfiguredUserThatCouldBeRootIsRefusedAtStart() {
        for (String user : List.of("0", "00", "+0", "root", "nobody", "1:0", "4294967296", " 65534", "")) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> EngineSettings.fromConfig(
                    ConfigFactory.parseString("agentexec.sandbox.docker.user = \"" + user + "\"")
                            .withFallback(ConfigFactory.load()).resolve()),
                    () -> "docker.user '" + user + "' was accepted");
            assertTrue(e.getMessage().contains("agentexec.sandbox.docker.user"), e.getMessage());
            assertTrue(e.getMessage().contains("AGENTEXEC_DOCKER_USER"), e.getMessage());
        }
        EngineSettings s = EngineSettings.fromConfig(ConfigFactory.parseString("agentexec.sandbox.docker.user = \"1000\"")
                .withFallback(ConfigFactory.load()).resolve());
        assertEquals("1000:1000", s.docker().defaults().user());
        assertEquals("65534:65534", EngineSettings.load().docker().defaults().user());
    }

    @Test
    void byDefaultNoRuntimeBeyondTheConfiguredOneIsAllowed() {
        assertEquals(java.util.Set.of(), EngineSettings.load().docker().allowedRuntimes());
    }

    @Test
    void aNewLanguageIsOnlyConfiguration() {
        EngineSettings s = EngineSettings.fromConfig(ConfigFactory.parseString("""
                agentexec.sandbox.languages += { name = ruby, aliases = [rb], image = "ruby:3", command = [ruby, "{file}"], extension = rb }
                """).withFallback(ConfigFactory.load()).resolve());
        Language ruby = s.languages().find("RB").orElseThrow();
        assertEquals("ruby:3", ruby.image());
        assertEquals(List.of("ruby", "main.rb"), ruby.commandFor("main.rb"));
        assertEquals("python", s.languages().find("python3").orElseThrow().name());
    }

    @Test
    void languageTablesRefuseAmbiguityAndCommandsWithoutTheFile() {
        Language a = new Language("a", List.of("x"), "img", List.of("a", "{file}"), "a", Map.of());
        Language b = new Language("b", List.of("x"), "img", List.of("b", "{file}"), "b", Map.of());
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new LanguageTable(List.of(a, b))).getMessage().contains("'x'"));
        assertThrows(IllegalArgumentException.class, () -> new Language("c", List.of(), "img", List.of("c"), "c", Map.of()));
    }

    @Test
    void anUnknownBackendIsAnErrorThatListsTheChoices() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BackendChoice.parse("podman"));
        assertTrue(e.getMessage().contains("auto, docker, bwrap, unsafe-local"));
        assertEquals(BackendChoice.BWRAP, BackendChoice.parse("bubblewrap"));
    }
}
