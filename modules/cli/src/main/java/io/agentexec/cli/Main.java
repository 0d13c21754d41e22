package io.agentexec.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Module;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import io.agentexec.sandbox.language.Language;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.Verdict;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.util.List;
import java.util.Map;

/**
 * {@code bin/agentexec}: the command line. Exit codes: 0 the engine ran the code (whatever the
 * verdict), 2 a usage error, 3 no sandbox could be made.
 */
public final class Main {
    static final int EXIT_OK = 0;
    static final int EXIT_USAGE = 2;
    static final int EXIT_UNAVAILABLE = 3;

    private static final String HELP = """
            agentexec: run code written by LLM agents in hardened sandboxes.

            commands:
              exec       run a file (or - for stdin) and print the result as JSON
              languages  list the configured languages
            """ + ExecCommand.USAGE;

    private Main() {
    }

    public static void main(String[] args) {
        System.exit(run(List.of(args), System.in, System.out, System.err));
    }

    public static int run(List<String> args, InputStream in, PrintStream out, PrintStream err) {
        if (args.isEmpty() || args.get(0).equals("--help") || args.get(0).equals("-h") || args.get(0).equals("help")) {
            (args.isEmpty() ? err : out).println(HELP);
            return args.isEmpty() ? EXIT_USAGE : EXIT_OK;
        }
        ObjectMapper json = new ObjectMapper().registerModule(new Jdk8Module())
                .enable(SerializationFeature.INDENT_OUTPUT);
        try {
            EngineSettings settings = EngineSettings.load();
            switch (args.get(0)) {
                case "exec" -> {
                    ExecCommand.Options options = ExecCommand.parse(args.subList(1, args.size()), settings.defaultLimits());
                    ExecutionResult result = ExecCommand.run(options, settings, in);
                    out.println(json.writeValueAsString(result));
                    return result.verdict() == Verdict.SANDBOX_ERROR ? EXIT_UNAVAILABLE : EXIT_OK;
                }
                case "languages" -> {
                    for (Language l : settings.languages().all()) {
                        out.println(json.writeValueAsString(Map.of("name", l.name(), "aliases", l.aliases(), "image", l.image())));
                    }
                    return EXIT_OK;
                }
                default -> throw new UsageException("unknown command '" + args.get(0) + "' (exec, languages)");
            }
        } catch (UsageException e) {
            err.println("agentexec: " + e.getMessage());
            return EXIT_USAGE;
        } catch (SandboxUnavailableException e) {
            err.println("agentexec: " + e.getMessage());
            return EXIT_UNAVAILABLE;
        } catch (IOException e) {
            err.println("agentexec: " + e.getMessage());
            return EXIT_USAGE;
        }
    }
}
