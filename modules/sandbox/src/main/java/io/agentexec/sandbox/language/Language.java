package io.agentexec.sandbox.language;

import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;

/**
 * A language the engine can run: everything about it is configuration, so a new language is a
 * config entry plus an image that holds its interpreter.
 *
 * @param command   argv to run a saved block; {@code {file}} stands for the block's file name
 * @param extension file name extension for saved blocks, without the dot
 * @param zygote    a pre-initialised interpreter for the blocks, where the language has one
 */
public record Language(
        String name,
        List<String> aliases,
        String image,
        List<String> command,
        String extension,
        Map<String, String> environment,
        Optional<Zygote> zygote) {

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
        Objects.requireNonNull(zygote, "zygote");
        if (zygote.isPresent() && (command.indexOf(FILE_PLACEHOLDER) < 1
                || command.indexOf(FILE_PLACEHOLDER) != command.lastIndexOf(FILE_PLACEHOLDER))) {
            throw new IllegalArgumentException("language " + name + ": a zygote needs a command with the interpreter "
                    + "first and " + FILE_PLACEHOLDER + " once after it, got " + command);
        }
    }

    /** A language without a pre-initialised interpreter. */
    public Language(String name, List<String> aliases, String image, List<String> command, String extension,
                    Map<String, String> environment) {
        this(name, aliases, image, command, extension, environment, Optional.empty());
    }

    /** How many leading entries of the command are the interpreter's (what a zygote is started with). */
    public int interpreterArgumentCount() {
        return command.indexOf(FILE_PLACEHOLDER);
    }

    public List<String> commandFor(String file) {
        return command.stream().map(part -> part.equals(FILE_PLACEHOLDER) ? file : part).toList();
    }
}
