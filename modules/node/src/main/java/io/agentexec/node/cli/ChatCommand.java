package io.agentexec.node.cli;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.agentexec.agents.AgentConfigException;
import io.agentexec.agents.AgentRuntime;
import io.agentexec.agents.AssistantAgent;
import io.agentexec.agents.ChatMessage;
import io.agentexec.agents.ChatResult;
import io.agentexec.agents.HumanInputMode;
import io.agentexec.agents.LlmConfig;
import io.agentexec.agents.ModelCatalog;
import io.agentexec.agents.UserProxyAgent;
import io.agentexec.agents.entity.ConversationEntity;
import io.agentexec.node.NodeConfig;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;

/**
 * {@code agentexec chat} (without {@code --server}): runs the seed's first chat (a code executor and a coding
 * assistant) in this process, on a node of its own, and prints it turn by turn, AG2 style. Without a configured
 * endpoint (AGENTEXEC_LLM_BASE_URL) it uses the bundled replay script, and says so.
 */
final class ChatCommand {
    static final String DEFAULT_TASK = """
            Write and test a Python function that:
            1. Takes a list of numbers
            2. Returns the median value
            3. Handles edge cases (empty list, even/odd length)""";
    private static final String RULE = "-".repeat(80);

    private ChatCommand() {
    }

    /**
     * Runs the chat. Exit codes ({@link Exit}): 0 it terminated, 1 it did not (it failed), 2 a bad option; a missing
     * configuration file is thrown ({@link NodeConfig.ConfigFileException}).
     */
    static int run(String[] args, Map<String, String> env, InputStream in, PrintStream out, PrintStream err) {
        Map<String, String> options;
        try {
            options = parse(args);
        } catch (AgentConfigException e) {
            err.println("agentexec chat: " + e.getMessage());
            err.println(usage());
            return Exit.USAGE.code();
        }
        if (options.containsKey("help")) {
            out.println(usage());
            return Exit.OK.code();
        }
        Config config = NodeConfig.load(Optional.ofNullable(options.get("config")).map(Path::of), env);
        if (env.get("AGENTEXEC_PORT") == null) {
            // a chat from the command line is a node of its own; it must not need a fixed port
            config = ConfigFactory.parseString("pekko.remote.artery.canonical.port = 0").withFallback(config);
        }
        try (AgentRuntime runtime = AgentRuntime.start(config)) {
            LlmConfig llm = Optional.ofNullable(options.get("replay")).map(LlmConfig::replay)
                    .or(runtime::defaultLlmConfig)
                    .orElseGet(() -> LlmConfig.replay(ModelCatalog.bundledMedianReplay().toString()));
            if (llm.kind() == LlmConfig.Kind.REPLAY) {
                out.println("[replay model: answers come from " + llm.replayScript().orElseThrow()
                        + ", not from a live LLM; set AGENTEXEC_LLM_BASE_URL to use one]");
            }
            AssistantAgent assistant = runtime.assistantAgent(options.getOrDefault("assistant", "coding_assistant"), llm);
            Map<String, Object> execution = new LinkedHashMap<>();
            execution.put("work_dir", options.getOrDefault("work-dir", "python_workspace"));
            String useDocker = options.getOrDefault("use-docker", "true");
            execution.put("use_docker", useDocker.equals("true") ? Boolean.TRUE : useDocker.equals("false") ? Boolean.FALSE : useDocker);
            if (options.containsKey("timeout")) {
                execution.put("timeout", Integer.parseInt(options.get("timeout")));
            }
            HumanInputMode mode = HumanInputMode.parse(options.getOrDefault("human-input-mode", "NEVER"));
            UserProxyAgent executor = runtime.userProxyAgent(options.getOrDefault("executor", "code_executor"),
                    o -> o.humanInputMode(mode).codeExecutionConfig(execution));
            OptionalInt maxTurns = options.containsKey("max-turns")
                    ? OptionalInt.of(Integer.parseInt(options.get("max-turns"))) : OptionalInt.empty();
            String id = runtime.startChat(executor, assistant, options.getOrDefault("message", DEFAULT_TASK), maxTurns);
            out.println("conversation " + id);
            ChatResult result = follow(runtime, id, new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8)), out);
            out.println("chat " + result.status().name().toLowerCase() + ": " + result.terminationReason());
            out.println("tokens: " + result.tokenUsage().input() + " in, " + result.tokenUsage().output() + " out");
            return (result.status() == io.agentexec.agents.ConversationStatus.TERMINATED ? Exit.OK : Exit.FAILED).code();
        } catch (AgentConfigException | NumberFormatException e) {
            err.println("agentexec chat: " + e.getMessage());
            return Exit.USAGE.code();
        }
    }

    /** Prints each message once, as it is persisted; asks the terminal when a human reply is due. */
    private static ChatResult follow(AgentRuntime runtime, String id, BufferedReader in, PrintStream out) {
        int printed = 0;
        int noticesPrinted = 0;
        while (true) {
            ConversationEntity.Transcript t = runtime.transcript(id);
            for (; printed < t.messages().size(); printed++) {
                print(t.messages().get(printed), out);
                for (; noticesPrinted < t.notices().size() && t.notices().get(noticesPrinted).afterIndex() <= printed; noticesPrinted++) {
                    out.println(">>>>>>>> " + t.notices().get(noticesPrinted).text());
                }
            }
            if (t.status().isOver()) {
                return AgentRuntime.toResult(t);
            }
            if (t.pendingHuman().isPresent()) {
                out.print(t.pendingHuman().get().prompt());
                out.flush();
                String line;
                try {
                    line = in.readLine();
                } catch (IOException e) {
                    line = null;
                }
                runtime.provideHumanInput(id, line == null ? "" : line);
                continue;
            }
            try {
                Thread.sleep(runtime.settings().pollInterval().toMillis());
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return AgentRuntime.toResult(t);
            }
        }
    }

    static void print(ChatMessage m, PrintStream out) {
        String label = switch (m.source()) {
            case LLM -> " [" + m.model().orElse("model") + ", " + m.tokens().input() + "+" + m.tokens().output() + " tokens]";
            case CODE_EXECUTION -> " [code execution]";
            case HUMAN -> " [human]";
            default -> "";
        };
        out.println(m.sender() + " (to " + m.recipient() + ")" + label + " " + m.timestamp() + ":");
        out.println();
        out.println(m.content());
        out.println();
        out.println(RULE);
    }

    static Map<String, String> parse(String[] args) {
        Map<String, String> options = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--help") || a.equals("-h")) {
                options.put("help", "");
                continue;
            }
            if (!a.startsWith("--") || !java.util.Set.of("--message", "--max-turns", "--replay", "--use-docker",
                    "--work-dir", "--timeout", "--human-input-mode", "--assistant", "--executor", "--config").contains(a)) {
                throw new AgentConfigException("unknown option " + a);
            }
            if (i + 1 >= args.length) {
                throw new AgentConfigException(a + " needs a value");
            }
            options.put(a.substring(2), args[++i]);
        }
        return options;
    }

    static String usage() {
        return """
                usage: agentexec chat [--message TEXT] [--max-turns N] [--replay FILE] [--use-docker true|false|IMAGE]
                                      [--work-dir DIR] [--timeout SECONDS] [--human-input-mode NEVER|TERMINATE|ALWAYS]
                                      [--assistant NAME] [--executor NAME] [--config FILE]
                The model is AGENTEXEC_LLM_BASE_URL / AGENTEXEC_LLM_MODEL (key in $OPENAI_API_KEY, or the variable
                named by AGENTEXEC_LLM_API_KEY_ENV); without one, a bundled replay script answers, labelled as such.""";
    }
}
