package io.agentexec.node.cli;

import java.util.Arrays;
import java.util.stream.Collectors;

/**
 * The one exit-code table of {@code bin/agentexec}, for every command (printed by {@code --help}, documented in
 * README.md). Where the three former command lines disagreed, the local {@code exec}'s documented codes won
 * (0 ran whatever the verdict, 2 usage, 3 no sandbox), and the others took the meaning nearest theirs.
 */
public enum Exit {
    /** The command did its work: the code ran whatever its verdict, the chat ended, the node stopped. */
    OK(0, "done: the code ran (whatever its verdict), the chat ended, the node stopped"),
    /** The server refused the request, the chat failed, or the node could not start. */
    FAILED(1, "refused or failed: the server refused the request, the chat failed, the node could not start"),
    /** A command line that cannot run as given, or a configuration file that is missing or does not parse. */
    USAGE(2, "usage: a bad command line, or a configuration file that is missing or unreadable"),
    /** Nothing ran: no sandbox could be made here, or the server could not be reached. */
    UNAVAILABLE(3, "nothing ran: no sandbox could be made here, or the server could not be reached");

    private final int code;
    private final String meaning;

    Exit(int code, String meaning) {
        this.code = code;
        this.meaning = meaning;
    }

    public int code() {
        return code;
    }

    /** The table as {@code --help} prints it. */
    public static String table() {
        return Arrays.stream(values()).map(e -> "  " + e.code + "  " + e.meaning).collect(Collectors.joining("\n"));
    }
}
