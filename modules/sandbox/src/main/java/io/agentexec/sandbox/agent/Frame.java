package io.agentexec.sandbox.agent;

/** One frame of the agent protocol: a type byte and a payload. See agentexec-agent.c. */
record Frame(byte type, byte[] payload) {
    static final byte HELLO = 'h';
    static final byte OK = 'k';
    static final byte ERROR = 'r';
    static final byte STDOUT = 'o';
    static final byte STDERR = 'e';
    static final byte FILE_CHANGED = 'f';
    static final byte EXIT = 'x';
    static final byte DATA = 'd';
    static final byte START_NOTE = 'z';

    static final byte PING = 'P';
    static final byte RUN = 'R';
    static final byte WRITE = 'W';
    static final byte GET = 'G';
    static final byte CANCEL = 'C';
    static final byte SCRUB = 'S';

    /** Marks the end of the agent's output stream; never sent by the agent. */
    static final Frame END = new Frame((byte) 0, new byte[0]);
}
