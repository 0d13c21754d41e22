package io.agentexec.node;

import io.agentexec.node.cli.Cli;
import java.util.List;

/**
 * {@code bin/agentexec}'s main class: the one command line ({@link Cli}) for every command, with one exit-code table
 * ({@link io.agentexec.node.cli.Exit}). {@code serve} runs a node put together by the {@link Guardian}.
 */
public final class AgentexecMain {
    private AgentexecMain() {
    }

    public static void main(String[] args) {
        AsyncStages.onTheCommonPool(); // first: before anything initialises CompletableFuture
        System.exit(Cli.run(List.of(args), System.getenv(), System.in, System.out, System.err));
    }
}
