package io.agentexec.sandbox.language;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * A language's pre-initialised interpreter ("zygote", see agentexec-agent.c): the agent keeps the interpreter started
 * with its start-up done and runs each block in a fork of it. {@code bootstrap} names how (the only one today:
 * {@code python}, the resource {@code python-zygote.py}); {@code versions} are the interpreter versions whose parity
 * with a plain start was tested (an image with another one gets plain starts, which the agent reports).
 *
 * @param bootstrap the bootstrap's name ({@code languages[].zygote.bootstrap})
 * @param versions  {@code MAJOR.MINOR} versions the bootstrap may run under ({@code languages[].zygote.versions})
 */
public record Zygote(String bootstrap, List<String> versions) {
    /** The bootstraps this module ships, by name: the -c loader each is started with, and its resource. */
    private static final Map<String, String> LOADERS = Map.of(
            // Reads the bootstrap from fd 3 and runs it; in a block's process it returns, and the script runs through
            // the interpreter's own run function. See python-zygote.py.
            "python", "import os;exec(os.read(3,1<<20));"
                    + "_agentexec_exit(_agentexec_run(*_agentexec_args))");
    private static final Pattern VERSION = Pattern.compile("[0-9]{1,3}\\.[0-9]{1,3}");

    public Zygote {
        Objects.requireNonNull(bootstrap, "bootstrap");
        versions = List.copyOf(versions);
        if (!LOADERS.containsKey(bootstrap)) {
            throw new IllegalArgumentException("zygote.bootstrap '" + bootstrap + "' is unknown (known: "
                    + String.join(", ", LOADERS.keySet()) + ")");
        }
        if (versions.isEmpty()) {
            throw new IllegalArgumentException("zygote.versions must name at least one MAJOR.MINOR version");
        }
        for (String v : versions) {
            if (!VERSION.matcher(v).matches()) {
                throw new IllegalArgumentException("zygote.versions: '" + v + "' is not MAJOR.MINOR (e.g. 3.11)");
            }
        }
    }

    /** What replaces the block's file in the language's command to start the zygote: {@code -c LOADER}. */
    public List<String> startArguments() {
        return List.of("-c", LOADERS.get(bootstrap));
    }

    /** The bootstrap's source, with the supported versions filled in. */
    public byte[] source() {
        String resource = bootstrap + "-zygote.py";
        try (InputStream in = Zygote.class.getResourceAsStream(resource)) {
            if (in == null) {
                throw new IllegalStateException("zygote bootstrap " + resource + " is missing from the classpath");
            }
            String text = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            String tuple = versions.stream().map(v -> "\"" + v + "\"").collect(Collectors.joining(", ", "(", ",)"));
            return text.replace("SUPPORTED_VERSIONS", tuple).getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
