package io.agentexec.sandbox.model;

/**
 * How one block of a request ended; the request's result aggregates these.
 *
 * @param start how the block's process started: {@value #ZYGOTE} (a fork of a pre-initialised interpreter),
 *              {@value #EXEC} (a plain start of the language's command) or {@value #NONE} (nothing ran: an unknown
 *              language). Results recorded before this field existed read as {@value #EXEC}.
 */
public record BlockOutcome(int index, String language, Verdict verdict, int exitCode, long wallTimeMs, String start) {
    public static final String ZYGOTE = "zygote";
    public static final String EXEC = "exec";
    public static final String NONE = "none";

    public BlockOutcome {
        if (start == null) {
            start = EXEC; // journal events and JSON from before the field: every block was a plain start then
        }
    }

    /** A plain start. */
    public BlockOutcome(int index, String language, Verdict verdict, int exitCode, long wallTimeMs) {
        this(index, language, verdict, exitCode, wallTimeMs, EXEC);
    }
}
