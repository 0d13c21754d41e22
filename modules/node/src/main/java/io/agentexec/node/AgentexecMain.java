package io.agentexec.node;

import io.agentexec.agents.cli.ChatMain;
import io.agentexec.gateway.GatewayMain;
import io.agentexec.gateway.client.GatewayCli;
import java.util.List;

/**
 * {@code bin/agentexec}: one entry point for every command. Local commands run the engine or a
 * chat in this process; commands given {@code --server URL} (and {@code sandbox}, {@code logs})
 * talk to a running node; {@code serve} runs a node.
 */
public final class AgentexecMain {
    static final String HELP = """
            agentexec: run code written by LLM agents in hardened sandboxes.

            commands:
              serve [CONFIG]                 run a node (single-node default: HTTP and gRPC on 127.0.0.1:8080, H2 in ./data)
              exec --language LANG FILE|-    run code here through the sandbox engine; print the result as JSON
              exec --server URL ...          run code on a node
              chat [--message TEXT] ...      run an AG2-style chat here (replay model unless an endpoint is configured)
              chat --server URL ...          run a chat on a node
              sandbox ... | logs ...         manage sandboxes and follow executions on a node
              languages                      list the configured languages

            run a command with --help for its options.
            """;

    private AgentexecMain() {
    }

    public static void main(String[] args) throws Exception {
        System.exit(run(List.of(args)));
    }

    static int run(List<String> args) throws Exception {
        if (args.isEmpty() || List.of("help", "--help", "-h").contains(args.get(0))) {
            (args.isEmpty() ? System.err : System.out).print(HELP);
            return args.isEmpty() ? 2 : 0;
        }
        String command = args.get(0);
        boolean remote = args.contains("--server");
        return switch (command) {
            case "serve" -> {
                GatewayMain.main(args.subList(1, args.size()).toArray(String[]::new));
                yield 0;
            }
            case "exec", "languages" -> remote
                    ? GatewayCli.run(args, System.getenv(), System.in, System.out, System.err)
                    : io.agentexec.cli.Main.run(args, System.in, System.out, System.err);
            case "chat" -> {
                if (remote) {
                    yield GatewayCli.run(args, System.getenv(), System.in, System.out, System.err);
                }
                yield ChatMain.run(args.subList(1, args.size()).toArray(String[]::new), System.in, System.out, System.err);
            }
            case "sandbox", "logs" -> GatewayCli.run(args, System.getenv(), System.in, System.out, System.err);
            default -> {
                System.err.println("agentexec: unknown command '" + command + "' (agentexec --help lists them)");
                yield 2;
            }
        };
    }
}
