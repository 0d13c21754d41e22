package io.agentexec.sandbox.options;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The user a sandbox container runs as: a numeric uid and gid, both above 0. The one parser of user text,
 * used for AG2's {@code --user}, for the configured {@code docker.user} and for options given directly.
 *
 * <p>Only plain decimal numbers are accepted. Docker resolves a name in the image's {@code /etc/passwd} (a user's
 * image may map any name to 0); Go's number parsing reads {@code 00}, {@code +0} and {@code -0} as 0; a uid past
 * 32 bits wraps to 0 in {@code setuid}; and a uid without a gid gets the image's group for it, or group 0 when the
 * image has none. So the text must be {@code UID} or {@code UID:GID}, without sign, spaces or leading zeros, each
 * from 1 to {@link #MAX_ID}; a lone uid gets the same number as its gid.
 */
public record SandboxUser(int uid, int gid) {
    /** The largest id accepted: ids stay positive in every signed 32-bit representation along the way. */
    public static final int MAX_ID = Integer.MAX_VALUE;

    private static final Pattern SYNTAX = Pattern.compile("([1-9][0-9]{0,9})(?::([1-9][0-9]{0,9}))?");

    public SandboxUser {
        if (uid < 1 || gid < 1) {
            throw new IllegalArgumentException("uid and gid must be from 1 to " + MAX_ID + ", got " + uid + ":" + gid);
        }
    }

    /**
     * Reads {@code UID} or {@code UID:GID}.
     *
     * @throws IllegalArgumentException saying why the text is refused (its message names root as the danger)
     */
    public static SandboxUser parse(String text) {
        if (text == null) {
            throw new IllegalArgumentException(rule("no user"));
        }
        Matcher m = SYNTAX.matcher(text);
        if (!m.matches()) {
            throw new IllegalArgumentException(rule("'" + printable(text) + "'"));
        }
        long uid = Long.parseLong(m.group(1));
        long gid = m.group(2) == null ? uid : Long.parseLong(m.group(2));
        if (uid > MAX_ID || gid > MAX_ID) {
            throw new IllegalArgumentException(rule("'" + text + "' is out of range"));
        }
        return new SandboxUser((int) uid, (int) gid);
    }

    /** As Docker takes it: {@code UID:GID}. */
    @Override
    public String toString() {
        return uid + ":" + gid;
    }

    private static String rule(String what) {
        return what + ": a sandbox user is a numeric UID or UID:GID, each from 1 to " + MAX_ID
                + " without sign, spaces or leading zeros (0 is root; a name may be root in the image; "
                + "a missing gid would be the image's, maybe root's)";
    }

    /** The refused text as shown in a message: control characters escaped, long text cut. */
    private static String printable(String text) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < text.length() && i < 64; i++) {
            char c = text.charAt(i);
            b.append(c < 0x20 || c == 0x7f ? String.format("\\u%04x", (int) c) : String.valueOf(c));
        }
        return text.length() > 64 ? b + "..." : b.toString();
    }
}
