package io.agentexec.sandbox.language;

import com.typesafe.config.Config;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Collectors;

/** Looks languages up by name or alias, case-insensitively. */
public final class LanguageTable {
    private final Map<String, Language> byName;
    private final Map<String, Language> byAlias = new LinkedHashMap<>();

    public LanguageTable(List<Language> languages) {
        this.byName = languages.stream().collect(Collectors.toMap(Language::name, l -> l, (a, b) -> {
            throw new IllegalArgumentException("language defined twice: " + a.name());
        }, LinkedHashMap::new));
        for (Language language : languages) {
            register(language.name(), language);
            language.aliases().forEach(alias -> register(alias, language));
        }
    }

    private void register(String key, Language language) {
        Language previous = byAlias.put(key.toLowerCase(Locale.ROOT), language);
        if (previous != null && previous != language) {
            throw new IllegalArgumentException("alias '" + key + "' names both " + previous.name() + " and " + language.name());
        }
    }

    /** Reads {@code agentexec.sandbox.languages}: a list of objects with name, aliases, image, command, extension, env. */
    public static LanguageTable fromConfig(Config sandboxConfig) {
        List<Language> languages = sandboxConfig.getConfigList("languages").stream().map(c -> new Language(
                c.getString("name"),
                c.hasPath("aliases") ? c.getStringList("aliases") : List.of(),
                c.getString("image"),
                c.getStringList("command"),
                c.getString("extension"),
                c.hasPath("env") ? c.getConfig("env").entrySet().stream().collect(Collectors.toMap(
                        Map.Entry::getKey, e -> String.valueOf(e.getValue().unwrapped()))) : Map.of()))
                .toList();
        return new LanguageTable(languages);
    }

    public Optional<Language> find(String nameOrAlias) {
        return Optional.ofNullable(byAlias.get(nameOrAlias.trim().toLowerCase(Locale.ROOT)));
    }

    public Collection<Language> all() {
        return byName.values();
    }
}
