package io.agentexec.bench;

/** One caller's call of a measured path: one request, its answer checked. */
@FunctionalInterface
interface Call {
    void run() throws Exception;
}
