package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import io.agentexec.sandbox.EngineSettings.BackendChoice;
import io.agentexec.sandbox.language.Language;
import io.agentexec.sandbox.language.LanguageTable;
import io.agentexec.sandbox.language.Zygote;
import io.agentexec.sandbox.model.BlockOutcome;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
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

    private static EngineSettings with(String hocon) {
        return EngineSettings.fromConfig(ConfigFactory.parseString(hocon).withFallback(ConfigFactory.load()).resolve());
    }

    @Test
    void pythonHasAZygoteByDefaultAndTheOtherLanguagesNone() {
        EngineSettings s = EngineSettings.load();
        assertTrue(s.zygote().enabled());
        assertEquals(128L << 20, s.zygote().minMemoryBytes());
        assertEquals(0, s.zygote().forksPerZygote());
        Language python = s.languages().find("python").orElseThrow();
        assertEquals(Optional.of(new Zygote("python", List.of("3.11"))), python.zygote());
        assertEquals(2, python.interpreterArgumentCount(), "python3 -u, then the file");
        assertEquals(List.of("-c"), python.zygote().get().startArguments().subList(0, 1));
        String source = new String(python.zygote().get().source(), java.nio.charset.StandardCharsets.UTF_8);
        assertTrue(source.contains("_agentexec_zygote((\"3.11\",))"), "the versions are filled in");
        assertEquals(Optional.empty(), s.languages().find("bash").orElseThrow().zygote());
        // The versions' environment variable is one comma-separated string.
        EngineSettings listed = with("agentexec.sandbox.languages = [{ name = p, image = i, command = [python3, \"{file}\"], "
                + "extension = py, zygote { bootstrap = python, versions = \"3.11, 3.12\" } }]");
        assertEquals(List.of("3.11", "3.12"), listed.languages().find("p").orElseThrow().zygote().orElseThrow().versions());
    }

    @Test
    void badZygoteSettingsAreErrorsThatNameTheField() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> with("agentexec.sandbox.languages = "
                + "[{ name = p, image = i, command = [python3, \"{file}\"], extension = py, zygote { bootstrap = ruby, versions = [\"3.11\"] } }]"));
        assertTrue(e.getMessage().contains("languages[p].zygote.bootstrap 'ruby' is unknown"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> with("agentexec.sandbox.languages = "
                + "[{ name = p, image = i, command = [python3, \"{file}\"], extension = py, zygote { bootstrap = python, versions = [\"3.x\"] } }]"));
        assertTrue(e.getMessage().contains("zygote.versions: '3.x' is not MAJOR.MINOR"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Language("p", List.of(), "i", List.of("{file}"), "py",
                Map.of(), Optional.of(new Zygote("python", List.of("3.11")))));
        assertTrue(e.getMessage().contains("a zygote needs a command with the interpreter first"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> with("agentexec.sandbox.zygote.forks-per-zygote = -1"));
        assertTrue(e.getMessage().contains("agentexec.sandbox.zygote.forks-per-zygote"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> with("agentexec.sandbox.zygote.fork-timeout = 0s"));
        assertTrue(e.getMessage().contains("fork-timeout"), e.getMessage());
    }

    /** Results journalled before BlockOutcome.start existed read as plain starts. */
    @Test
    void aBlockOutcomeWithoutAStartIsAPlainStart() {
        assertEquals(BlockOutcome.EXEC, new BlockOutcome(0, "python", io.agentexec.sandbox.model.Verdict.OK, 0, 1, null).start());
        assertEquals(BlockOutcome.EXEC, new BlockOutcome(0, "python", io.agentexec.sandbox.model.Verdict.OK, 0, 1).start());
    }

    @Test
    void anUnknownBackendIsAnErrorThatListsTheChoices() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> BackendChoice.parse("podman"));
        assertTrue(e.getMessage().contains("auto, docker, bwrap, unsafe-local"));
        assertEquals(BackendChoice.BWRAP, BackendChoice.parse("bubblewrap"));
    }
}
