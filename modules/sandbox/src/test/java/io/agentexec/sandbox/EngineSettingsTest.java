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
