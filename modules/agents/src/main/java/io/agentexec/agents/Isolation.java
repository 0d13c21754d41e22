package io.agentexec.agents;

/**
 * Where an agent's code runs. AG2's {@code use_docker: false} means bubblewrap here, still a
 * sandbox; only {@link #UNSAFE_LOCAL}, which an operator must set explicitly in config, runs on the host.
 */
public enum Isolation {
    DOCKER, BWRAP, UNSAFE_LOCAL
}
