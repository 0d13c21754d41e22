package io.agentexec.sandbox.language;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * A language the engine can run: everything about it is configuration, so a new language is a
 * config entry plus an image that holds its interpreter.
 *
 * @param command   argv to run a saved block; {@code {file}} stands for the block's file name
 * @param extension file name extension for saved blocks, without the dot
 */
public record Language(
        String name,
        List<String> aliases,
        String image,
        List<String> command,
        String extension,
        Map<String, String> environment) {

    public static final String FILE_PLACEHOLDER = "{file}";

    public Language {
        Objects.requireNonNull(name, "name");
        aliases = List.copyOf(aliases);
        Objects.requireNonNull(image, "image");
        command = List.copyOf(command);
        Objects.requireNonNull(extension, "extension");
        environment = Map.copyOf(environment);
        if (command.isEmpty() || !command.contains(FILE_PLACEHOLDER)) {
            throw new IllegalArgumentException("language " + name + ": command must contain " + FILE_PLACEHOLDER);
        }
    }

    public List<String> commandFor(String file) {
        return command.stream().map(part -> part.equals(FILE_PLACEHOLDER) ? file : part).toList();
    }
}
