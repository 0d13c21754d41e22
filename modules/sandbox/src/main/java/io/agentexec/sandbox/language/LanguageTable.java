package io.agentexec.sandbox.language;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigValueType;
import java.util.Arrays;
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

    /** Reads {@code agentexec.sandbox.languages}: a list of objects with name, aliases, image, command, extension, env, zygote. */
    public static LanguageTable fromConfig(Config sandboxConfig) {
        List<Language> languages = sandboxConfig.getConfigList("languages").stream().map(c -> new Language(
                c.getString("name"),
                c.hasPath("aliases") ? c.getStringList("aliases") : List.of(),
                c.getString("image"),
                c.getStringList("command"),
                c.getString("extension"),
                c.hasPath("env") ? c.getConfig("env").entrySet().stream().collect(Collectors.toMap(
                        Map.Entry::getKey, e -> String.valueOf(e.getValue().unwrapped()))) : Map.of(),
                zygote(c)))
                .toList();
        return new LanguageTable(languages);
    }

    /** {@code zygote { bootstrap = python, versions = ["3.11"] }}; versions may be one comma-separated string. */
    private static Optional<Zygote> zygote(Config language) {
        if (!language.hasPath("zygote")) {
            return Optional.empty();
        }
        Config z = language.getConfig("zygote");
        List<String> versions = z.getValue("versions").valueType() == ConfigValueType.STRING
                ? Arrays.stream(z.getString("versions").split(",")).map(String::trim).filter(v -> !v.isEmpty()).toList()
                : z.getStringList("versions");
        try {
            return Optional.of(new Zygote(z.getString("bootstrap"), versions));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("agentexec.sandbox.languages[" + language.getString("name") + "]." + e.getMessage(), e);
        }
    }

    public Optional<Language> find(String nameOrAlias) {
        return Optional.ofNullable(byAlias.get(nameOrAlias.trim().toLowerCase(Locale.ROOT)));
    }

    public Collection<Language> all() {
        return byName.values();
    }
}
