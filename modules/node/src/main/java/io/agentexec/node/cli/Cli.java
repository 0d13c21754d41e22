package io.agentexec.node.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Module;
import io.agentexec.node.NodeConfig;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.language.Language;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Verdict;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * {@code bin/agentexec}: the one command line. Local commands run here ({@code exec} through the execution port's
 * engine adapter, {@code chat} on a node of its own in this process, {@code serve} a node); commands given
 * {@code --server URL} (and {@code sandbox}, {@code logs}) talk to a running node. One exit-code table: {@link Exit}.
 */
public final class Cli {
    private static final Set<String> HELP_FLAGS = Set.of("help", "--help", "-h");
    private static final String CONFIG_OPTION = "--config";
    private static final String LANGUAGES_USAGE = "usage: agentexec languages [--config FILE]";

    static final String HELP = """
            agentexec: run code written by LLM agents in hardened sandboxes.

            commands:
              serve [FILE]                   run a node (single-node default: HTTP and gRPC on 127.0.0.1:8080, H2 in ./data)
              exec --language LANG FILE|-    run code here through the sandbox engine; print the result as JSON
              exec --server URL ...          run code on a node
              chat [--message TEXT] ...      run an AG2-style chat here (replay model unless an endpoint is configured)
              chat --server URL ...          run a chat on a node
              exec ... --profile P --policy secure --retries N --cache --test STDIN=EXPECTED
                                             the seed's executors, here or on a node
              sandbox ... | logs ...         manage sandboxes and follow executions on a node
              stats --server URL             the tenant's execution statistics on a node
              languages                      list the configured languages
              tenant create|list|revoke|rotate  the cluster's tenants and API keys, in its database

            configuration of the commands that run here (serve, exec, chat, languages): the file of `serve FILE` or
            `--config FILE`, else $AGENTEXEC_CONFIG, else -Dconfig.file, layered over the defaults (which the
            AGENTEXEC_* variables set). A file named that is not there is an error (exit 2), never a fallback.

            exit codes:
            """ + Exit.table() + """


            run a command with --help for its options.
            """;

    private static final ObjectMapper JSON = new ObjectMapper().registerModule(new Jdk8Module())
            .enable(SerializationFeature.INDENT_OUTPUT);

    private Cli() {
    }

    /** Runs {@code args} (the command first); returns the exit code ({@link Exit}). */
    public static int run(List<String> args, Map<String, String> env, InputStream in, PrintStream out, PrintStream err) {
        if (args.isEmpty() || HELP_FLAGS.contains(args.get(0))) {
            (args.isEmpty() ? err : out).print(HELP);
            return (args.isEmpty() ? Exit.USAGE : Exit.OK).code();
        }
        String command = args.get(0);
        List<String> rest = new ArrayList<>(args.subList(1, args.size()));
        boolean remote = rest.contains("--server");
        if (!rest.isEmpty() && HELP_FLAGS.contains(rest.get(0)) && !command.equals("chat")) {
            return help(command, out, err);
        }
        try {
            return switch (command) {
                case "serve" -> ServeCommand.run(rest, env, out, err);
                case "exec" -> remote ? ClientCommands.run(args, env, in, out, err) : exec(rest, env, in, out);
                case "languages" -> remote ? ClientCommands.run(args, env, in, out, err) : languages(rest, env, out);
                case "chat" -> remote ? ClientCommands.run(args, env, in, out, err)
                        : ChatCommand.run(rest.toArray(String[]::new), env, in, out, err);
                case "sandbox", "logs", "stats" -> ClientCommands.run(args, env, in, out, err);
                case "tenant" -> TenantCommand.run(rest, env, out, err);
                default -> {
                    err.println("agentexec: unknown command '" + command + "' (agentexec --help lists them)");
                    yield Exit.USAGE.code();
                }
            };
        } catch (NodeConfig.ConfigFileException | UsageException e) {
            err.println("agentexec: " + e.getMessage());
            return Exit.USAGE.code();
        } catch (SandboxUnavailableException e) {
            err.println("agentexec: " + e.getMessage());
            return Exit.UNAVAILABLE.code();
        } catch (IOException e) {
            err.println("agentexec: " + e.getMessage());
            return Exit.USAGE.code();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return Exit.FAILED.code();
        }
    }

    private static int help(String command, PrintStream out, PrintStream err) {
        String usage = switch (command) {
            case "serve" -> ServeCommand.USAGE;
            case "exec" -> ExecCommand.USAGE + "\n" + ClientCommands.USAGE;
            case "languages" -> LANGUAGES_USAGE;
            case "sandbox", "logs", "stats" -> ClientCommands.USAGE;
            case "tenant" -> TenantCommand.USAGE;
            default -> null;
        };
        if (usage == null) {
            err.println("agentexec: unknown command '" + command + "' (agentexec --help lists them)");
            return Exit.USAGE.code();
        }
        out.println(usage);
        return Exit.OK.code();
    }

    /** {@code exec} here: prints the result as JSON; exit 0 whatever the verdict, 3 when no sandbox could be made. */
    private static int exec(List<String> args, Map<String, String> env, InputStream in, PrintStream out)
            throws IOException {
        com.typesafe.config.Config config = NodeConfig.load(takeConfig(args), env);
        EngineSettings settings = EngineSettings.fromConfig(config);
        io.agentexec.cluster.executors.SeedExecutors seed = io.agentexec.cluster.executors.SeedExecutors.local(config);
        ExecCommand.Options options = ExecCommand.parse(args, settings.defaultLimits(), seed,
                io.agentexec.sandbox.policy.ExecutionPolicy.fromConfig(config));
        ExecCommand.Ran ran = ExecCommand.run(options, settings, in, seed);
        ExecutionResult result = ran.result();
        // with the seed's executors: the result with what they add (cached, attempts, tests, violation, notes)
        out.println(ran.executors().isPresent()
                ? JSON.writeValueAsString(io.agentexec.gateway.http.Json.executorOutcome(ran.executors().get()))
                : JSON.writeValueAsString(result));
        return (result.verdict() == Verdict.SANDBOX_ERROR ? Exit.UNAVAILABLE : Exit.OK).code();
    }

    private static int languages(List<String> args, Map<String, String> env, PrintStream out) throws IOException {
        EngineSettings settings = EngineSettings.fromConfig(NodeConfig.load(takeConfig(args), env));
        for (Language l : settings.languages().all()) {
            out.println(JSON.writeValueAsString(Map.of("name", l.name(), "aliases", l.aliases(), "image", l.image())));
        }
        return Exit.OK.code();
    }

    /** Takes {@code --config FILE} out of a local command's arguments. */
    static Optional<Path> takeConfig(List<String> args) {
        int i = args.indexOf(CONFIG_OPTION);
        if (i < 0) {
            return Optional.empty();
        }
        if (i + 1 >= args.size()) {
            throw new UsageException(CONFIG_OPTION + " needs a FILE");
        }
        Path file = Path.of(args.get(i + 1));
        args.remove(i + 1);
        args.remove(i);
        if (args.contains(CONFIG_OPTION)) {
            throw new UsageException(CONFIG_OPTION + " may be given once");
        }
        return Optional.of(file);
    }
}
