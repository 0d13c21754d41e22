package io.agentexec.sandbox.blocks;

import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * AG2's convention: a first line {@code # filename: NAME} (or {@code // filename: NAME}) saves the
 * block under NAME in the workspace. This finds the name; {@link #check} says whether it is safe.
 */
public final class FilenameDirective {
    private static final Pattern DIRECTIVE = Pattern.compile("^\\s*(?:#|//)\\s*filename:\\s*(.+?)\\s*$");

    private FilenameDirective() {
    }

    public static Optional<String> find(String code) {
        int end = code.indexOf('\n');
        String first = end < 0 ? code : code.substring(0, end);
        Matcher m = DIRECTIVE.matcher(first.replace("\r", ""));
        return m.matches() ? Optional.of(m.group(1)) : Optional.empty();
    }

    /** Returns why the name would leave the workspace, or empty when it stays inside. */
    public static Optional<String> check(String name) {
        if (name.indexOf('\0') >= 0) {
            return Optional.of("file name contains a NUL byte");
        }
        if (name.isBlank()) {
            return Optional.of("file name is empty");
        }
        if (name.startsWith("/") || name.startsWith("\\")) {
            return Optional.of("file name is an absolute path: " + name);
        }
        for (String part : name.split("[/\\\\]", -1)) {
            if (part.equals("..")) {
                return Optional.of("file name leaves the workspace through '..': " + name);
            }
            if (part.isEmpty() || part.equals(".")) {
                return Optional.of("file name has an empty or '.' component: " + name);
            }
        }
        if (name.length() > 255 * 4) {
            return Optional.of("file name is too long");
        }
        return Optional.empty();
    }
}
