package io.agentexec.node.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The client side of {@code bin/agentexec}: {@code exec --server URL}, {@code sandbox}, {@code chat}
 * and {@code logs}, talking to a gateway over HTTP. Results print as JSON on stdout; output streams
 * to stderr while code runs, with a progress line when it is quiet.
 * Exit codes ({@link Exit}): 0 done (whatever the verdict), 1 the gateway refused, 2 usage, 3 gateway unreachable.
 */
final class ClientCommands {
    static final int EXIT_OK = Exit.OK.code();
    static final int EXIT_REFUSED = Exit.FAILED.code();
    static final int EXIT_USAGE = Exit.USAGE.code();
    static final int EXIT_UNREACHABLE = Exit.UNAVAILABLE.code();
    /** A quiet run shows it is alive this often. */
    private static final Duration PROGRESS_EVERY = Duration.ofSeconds(2);

    static final String USAGE = """
            client commands (need --server URL or AGENTEXEC_SERVER; --api-key KEY or AGENTEXEC_API_KEY):
              exec --server URL --language L [--timeout S] [--memory MB] [--stdin FILE] [--sandbox ID]
                   [--profile P] [--policy secure | --forbid PATTERN...] [--retries N] [--cache]
                   [--test STDIN=EXPECTED...] [--executor NAME] FILE|-
              stats [--executor NAME]    the tenant's execution statistics (count, success rate, p50/p95, ...)
              sandbox create --language L [--profile P] [--policy secure | --forbid PATTERN...] [--retries N] [--cache]
                     [--executor NAME]   (the defaults of its runs; a run's own flags win)
              sandbox rm ID | sandbox put ID PATH LOCALFILE | sandbox get ID PATH
              chat [--message TEXT] [--model NAME] [--human-input-mode M] [--use-docker V] ...   run a chat, follow it
              chat start --config FILE.json --message TEXT | chat input ID TEXT | chat show ID
              logs EXECUTION_ID          follow an execution's output until it ends
            """;

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final String server;
    private final Optional<String> apiKey;
    private final HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10)).build();
    private final PrintStream out;
    private final PrintStream err;

    private ClientCommands(String server, Optional<String> apiKey, PrintStream out, PrintStream err) {
        this.server = server.replaceAll("/+$", "");
        this.apiKey = apiKey;
        this.out = out;
        this.err = err;
    }

    /** Entry point for bin/agentexec: {@code args} start with the command (exec, sandbox, chat, logs). */
    static int run(List<String> args, Map<String, String> env, InputStream in, PrintStream out, PrintStream err) {
        List<String> rest = new ArrayList<>(args);
        try {
            String server = take(rest, "--server").or(() -> Optional.ofNullable(env.get("AGENTEXEC_SERVER")))
                    .orElseThrow(() -> new IllegalArgumentException("--server URL (or AGENTEXEC_SERVER) is required"));
            Optional<String> key = take(rest, "--api-key").or(() -> Optional.ofNullable(env.get("AGENTEXEC_API_KEY")));
            if (rest.isEmpty()) {
                throw new IllegalArgumentException("a command is required");
            }
            ClientCommands cli = new ClientCommands(server, key, out, err);
            String command = rest.remove(0);
            return switch (command) {
                case "exec" -> cli.exec(rest, in);
                case "sandbox" -> cli.sandbox(rest);
                case "chat" -> cli.chat(rest, in);
                case "logs" -> cli.logs(single(rest, "logs EXECUTION_ID"));
                case "stats" -> cli.stats(rest);
                default -> throw new IllegalArgumentException("unknown command '" + command + "'");
            };
        } catch (IllegalArgumentException e) {
            err.println("agentexec: " + e.getMessage());
            err.print(USAGE);
            return EXIT_USAGE;
        } catch (ConnectException e) {
            err.println("agentexec: cannot reach the gateway: " + e.getMessage());
            return EXIT_UNREACHABLE;
        } catch (Refused e) {
            err.println("agentexec: " + e.getMessage());
            return EXIT_REFUSED;
        } catch (IOException e) {
            err.println("agentexec: " + e);
            return EXIT_UNREACHABLE;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return EXIT_UNREACHABLE;
        }
    }

    /** The gateway answered with an error. */
    static final class Refused extends IOException {
        Refused(int status, String body) {
            super("the gateway answered " + status + ": " + body.strip());
        }
    }

    // ---- commands

    private int exec(List<String> args, InputStream in) throws IOException, InterruptedException {
        String language = take(args, "--language").orElseThrow(() -> new IllegalArgumentException("--language is required"));
        ObjectNode body = JSON.createObjectNode().put("language", language);
        ObjectNode limits = JSON.createObjectNode();
        take(args, "--timeout").ifPresent(v -> limits.put("timeoutSeconds", number(v, "--timeout")));
        take(args, "--memory").ifPresent(v -> limits.put("memoryMb", (long) number(v, "--memory")));
        if (!limits.isEmpty()) {
            body.set("limits", limits);
        }
        Optional<String> stdin = take(args, "--stdin");
        if (stdin.isPresent()) {
            body.put("stdin", Files.readString(Path.of(stdin.get())));
        }
        Optional<String> sandbox = take(args, "--sandbox");
        boolean executors = executorFlags(args, body);
        String file = single(args, "exec ... FILE|-");
        body.put("code", file.equals("-") ? new String(in.readAllBytes(), StandardCharsets.UTF_8) : Files.readString(Path.of(file)));
        String path = sandbox.map(id -> "/v1/sandboxes/" + enc(id) + "/executions").orElse("/v1/executions");
        if (!executors && sandbox.isPresent()) {
            // a sandbox made with a policy, retries or the cache gives them to every run: answered synchronously too
            JsonNode defaults = call("GET", "/v1/sandboxes/" + enc(sandbox.get()), null).path("defaults");
            executors = defaults.has("policy") || defaults.has("retries") || defaults.path("cache").asBoolean(false);
        }
        if (executors) {
            // the seed's executors answer once every attempt and case ran: one synchronous call, its result printed
            print(call("POST", path, body));
            return EXIT_OK;
        }
        path += "?async=true";
        JsonNode accepted = call("POST", path, body);
        String id = accepted.get("id").asText();
        err.println("agentexec: execution " + id + " running");
        return follow(id, true);
    }

    /**
     * The seed's executors as flags, into the request body: {@code --profile P}, {@code --policy NAME}, {@code --forbid
     * PATTERN} (repeatable), {@code --retries N}, {@code --cache}, {@code --test STDIN=EXPECTED} (repeatable; {@code \n}
     * in either side is a newline), {@code --executor NAME}. Returns whether one needs a synchronous answer.
     */
    static boolean executorFlags(List<String> args, ObjectNode body) {
        take(args, "--profile").ifPresent(p -> body.put("profile", p));
        take(args, "--executor").ifPresent(p -> body.put("executor", p));
        boolean sync = false;
        Optional<String> policy = take(args, "--policy");
        List<String> forbidden = new ArrayList<>();
        for (Optional<String> f = take(args, "--forbid"); f.isPresent(); f = take(args, "--forbid")) {
            forbidden.add(f.get());
        }
        if (policy.isPresent() && !forbidden.isEmpty()) {
            throw new IllegalArgumentException("give --policy NAME or --forbid PATTERN, not both");
        }
        if (policy.isPresent()) {
            body.put("policy", policy.get());
            sync = true;
        }
        if (!forbidden.isEmpty()) {
            forbidden.forEach(body.putArray("policy")::add);
            sync = true;
        }
        Optional<String> retries = take(args, "--retries");
        if (retries.isPresent()) {
            try {
                body.put("retries", Integer.parseInt(retries.get()));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--retries needs a whole number, got '" + retries.get() + "'");
            }
            sync = true;
        }
        if (args.remove("--cache")) {
            body.put("cache", true);
            sync = true;
        }
        var tests = JSON.createArrayNode();
        for (Optional<String> t = take(args, "--test"); t.isPresent(); t = take(args, "--test")) {
            int eq = t.get().indexOf('=');
            if (eq < 0) {
                throw new IllegalArgumentException("--test needs STDIN=EXPECTED, got '" + t.get() + "'");
            }
            tests.addObject().put("stdin", unescape(t.get().substring(0, eq)))
                    .put("expectedStdout", unescape(t.get().substring(eq + 1)));
        }
        if (!tests.isEmpty()) {
            body.set("tests", tests);
            sync = true;
        }
        return sync;
    }

    private static String unescape(String s) {
        return s.replace("\\n", "\n");
    }

    private int stats(List<String> args) throws IOException, InterruptedException {
        Optional<String> executor = take(args, "--executor");
        if (!args.isEmpty()) {
            throw new IllegalArgumentException("stats takes only --executor NAME; got " + args);
        }
        print(call("GET", "/v1/stats" + executor.map(e -> "?executor=" + enc(e)).orElse(""), null));
        return EXIT_OK;
    }

    private int logs(String executionId) throws IOException, InterruptedException {
        return follow(executionId, false);
    }

    /** Follows the execution's events: output to stderr as it comes, the result to stdout at the end. */
    private int follow(String id, boolean progress) throws IOException, InterruptedException {
        HttpResponse<InputStream> response = http.send(request("GET", "/v1/executions/" + enc(id) + "/events").build(),
                HttpResponse.BodyHandlers.ofInputStream());
        if (response.statusCode() != 200) {
            throw new Refused(response.statusCode(), new String(response.body().readAllBytes(), StandardCharsets.UTF_8));
        }
        long started = System.nanoTime();
        AtomicLong lastOutput = new AtomicLong(System.nanoTime());
        ScheduledExecutorService ticker = Executors.newSingleThreadScheduledExecutor(r -> {
            Thread t = new Thread(r, "agentexec-progress");
            t.setDaemon(true);
            return t;
        });
        if (progress) {
            ticker.scheduleAtFixedRate(() -> {
                if (System.nanoTime() - lastOutput.get() >= PROGRESS_EVERY.toNanos()) {
                    err.println("agentexec: still running, " + (System.nanoTime() - started) / 1_000_000_000L + "s");
                    lastOutput.set(System.nanoTime());
                }
            }, PROGRESS_EVERY.toMillis() / 2, PROGRESS_EVERY.toMillis() / 2, TimeUnit.MILLISECONDS);
        }
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(response.body(), StandardCharsets.UTF_8))) {
            String event = "";
            for (String line = reader.readLine(); line != null; line = reader.readLine()) {
                if (line.startsWith("event: ")) {
                    event = line.substring(7);
                } else if (line.startsWith("data: ")) {
                    JsonNode data = JSON.readTree(line.substring(6));
                    switch (event) {
                        case "output" -> {
                            lastOutput.set(System.nanoTime());
                            err.print(data.get("text").asText());
                            err.flush();
                        }
                        case "result" -> {
                            out.println(JSON.writeValueAsString(data));
                            return EXIT_OK;
                        }
                        case "error" -> throw new Refused(200, data.toString());
                        default -> err.println("agentexec: " + event + " " + data);
                    }
                }
            }
        } finally {
            ticker.shutdownNow();
        }
        throw new IOException("the event stream ended before the execution did");
    }

    private int sandbox(List<String> args) throws IOException, InterruptedException {
        if (args.isEmpty()) {
            throw new IllegalArgumentException("sandbox needs create, rm, put or get");
        }
        String sub = args.remove(0);
        switch (sub) {
            case "create" -> {
                String language = take(args, "--language").orElseThrow(() -> new IllegalArgumentException("--language is required"));
                ObjectNode body = JSON.createObjectNode().put("language", language);
                // the seed's executors given here are the defaults of the sandbox's runs (tests belong to a run)
                executorFlags(args, body);
                if (body.has("tests")) {
                    throw new IllegalArgumentException("--test belongs to an exec; a sandbox holds no test cases");
                }
                if (!args.isEmpty()) {
                    throw new IllegalArgumentException("sandbox create takes --language L and the executors' flags; got "
                            + args);
                }
                print(call("POST", "/v1/sandboxes", body));
            }
            case "rm" -> print(call("DELETE", "/v1/sandboxes/" + enc(single(args, "sandbox rm ID")), null));
            case "put" -> {
                if (args.size() != 3) {
                    throw new IllegalArgumentException("sandbox put ID PATH LOCALFILE");
                }
                HttpResponse<String> r = http.send(request("PUT", "/v1/sandboxes/" + enc(args.get(0)) + "/files/" + args.get(1))
                        .header("Content-Type", "application/octet-stream")
                        .PUT(HttpRequest.BodyPublishers.ofFile(Path.of(args.get(2)))).build(), HttpResponse.BodyHandlers.ofString());
                print(checked(r));
            }
            case "get" -> {
                if (args.size() != 2) {
                    throw new IllegalArgumentException("sandbox get ID PATH");
                }
                HttpResponse<byte[]> r = http.send(request("GET", "/v1/sandboxes/" + enc(args.get(0)) + "/files/" + args.get(1)).build(),
                        HttpResponse.BodyHandlers.ofByteArray());
                if (r.statusCode() != 200) {
                    throw new Refused(r.statusCode(), new String(r.body(), StandardCharsets.UTF_8));
                }
                out.write(r.body());
                out.flush();
            }
            default -> throw new IllegalArgumentException("unknown sandbox command '" + sub + "'");
        }
        return EXIT_OK;
    }

    private int chat(List<String> args, InputStream in) throws IOException, InterruptedException {
        if (args.isEmpty() || args.get(0).startsWith("--")) {
            return runChat(args, in);
        }
        String sub = args.remove(0);
        switch (sub) {
            case "start" -> {
                Path config = Path.of(take(args, "--config").orElseThrow(() -> new IllegalArgumentException("--config FILE is required")));
                String message = take(args, "--message").orElseThrow(() -> new IllegalArgumentException("--message is required"));
                ObjectNode body = JSON.createObjectNode();
                body.set("config", JSON.readTree(config.toFile()));
                body.put("message", message);
                print(call("POST", "/v1/conversations", body));
            }
            case "input" -> {
                if (args.size() != 2) {
                    throw new IllegalArgumentException("chat input ID TEXT");
                }
                print(call("POST", "/v1/conversations/" + enc(args.get(0)) + "/input", JSON.createObjectNode().put("text", args.get(1))));
            }
            case "show" -> print(call("GET", "/v1/conversations/" + enc(single(args, "chat show ID")), null));
            default -> throw new IllegalArgumentException("unknown chat command '" + sub + "'");
        }
        return EXIT_OK;
    }

    /**
     * {@code chat --server URL [--message TEXT] ...}: the local {@code chat} command's options, run on a
     * node. Starts the seed's chat (a code executor and a coding assistant), prints each message once
     * as the node persists it, asks this terminal when a human reply is due, and ends with the reason.
     * Exit 0 when the chat ended, 1 when it failed.
     */
    private int runChat(List<String> args, InputStream in) throws IOException, InterruptedException {
        String message = take(args, "--message").orElse(DEFAULT_TASK);
        String model = take(args, "--model").orElse("default");
        String mode = take(args, "--human-input-mode").orElse("NEVER");
        String useDocker = take(args, "--use-docker").orElse("true");
        String workDir = take(args, "--work-dir").orElse("python_workspace");
        Optional<String> timeout = take(args, "--timeout");
        Optional<String> maxTurns = take(args, "--max-turns");
        String assistantName = take(args, "--assistant").orElse("coding_assistant");
        String executorName = take(args, "--executor").orElse("code_executor");
        if (!args.isEmpty()) {
            throw new IllegalArgumentException("unknown chat option " + args.get(0) + " (chat --server URL [--message TEXT] "
                    + "[--model NAME] [--human-input-mode M] [--use-docker true|false|IMAGE] [--work-dir D] [--timeout S] "
                    + "[--max-turns N] [--assistant NAME] [--executor NAME])");
        }
        ObjectNode config = JSON.createObjectNode();
        config.putObject("assistant").put("name", assistantName).putObject("llm_config").put("model", model);
        ObjectNode proxy = config.putObject("user_proxy").put("name", executorName).put("human_input_mode", mode);
        ObjectNode execution = proxy.putObject("code_execution_config").put("work_dir", workDir);
        switch (useDocker) {
            case "true" -> execution.put("use_docker", true);
            case "false" -> execution.put("use_docker", false);
            default -> execution.put("use_docker", useDocker);
        }
        timeout.ifPresent(t -> execution.put("timeout", (long) number(t, "--timeout")));
        maxTurns.ifPresent(n -> config.put("max_turns", (long) number(n, "--max-turns")));
        ObjectNode body = JSON.createObjectNode();
        body.set("config", config);
        body.put("message", message);
        String id = call("POST", "/v1/conversations", body).get("id").asText();
        out.println("conversation " + id);
        BufferedReader terminal = new BufferedReader(new InputStreamReader(in, StandardCharsets.UTF_8));
        long printed = 0;
        while (true) {
            JsonNode t = call("GET", "/v1/conversations/" + enc(id), null);
            Optional<String> prompt = Optional.empty();
            String end = "";
            for (JsonNode e : t.get("events")) {
                long seq = e.get("sequence").asLong();
                String type = e.get("type").asText();
                JsonNode b = e.get("body");
                if (type.equals("human-input-requested")) {
                    prompt = Optional.of(b.path("prompt").asText());
                } else if (type.equals("human-input-received") || type.equals("human-input-timed-out")) {
                    prompt = Optional.empty();
                }
                if (type.equals("terminated") || type.equals("failed")) {
                    end = b.path("reason").asText();
                }
                if (seq <= printed) {
                    continue;
                }
                printed = seq;
                if (type.equals("message-sent")) {
                    JsonNode m = b.get("message");
                    out.println(m.path("sender").asText() + " (to " + m.path("recipient").asText() + "):");
                    out.println();
                    out.println(m.path("content").asText());
                    out.println();
                    out.println("-".repeat(80));
                } else if (type.equals("human-input-timed-out")
                        || (type.equals("human-input-received") && b.path("text").asText().isEmpty())) {
                    out.println(">>>>>>>> NO HUMAN INPUT RECEIVED.");
                }
            }
            String status = t.get("status").asText();
            if (status.equals("ended") || status.equals("failed")) {
                out.println("chat " + status + ": " + end);
                return status.equals("ended") ? EXIT_OK : EXIT_REFUSED;
            }
            if (status.equals("awaiting_human") && prompt.isPresent()) {
                out.print(prompt.get());
                out.flush();
                String line = terminal.readLine();
                ObjectNode input = JSON.createObjectNode().put("text", line == null ? "" : line);
                call("POST", "/v1/conversations/" + enc(id) + "/input", input);
                continue;
            }
            Thread.sleep(CHAT_POLL.toMillis());
        }
    }

    private static final Duration CHAT_POLL = Duration.ofMillis(300);
    static final String DEFAULT_TASK = """
            Write and test a Python function that:
            1. Takes a list of numbers
            2. Returns the median value
            3. Handles edge cases (empty list, even/odd length)""";

    // ---- plumbing

    private HttpRequest.Builder request(String method, String path) {
        HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(server + path)).method(method, HttpRequest.BodyPublishers.noBody());
        apiKey.ifPresent(k -> b.header("Authorization", "Bearer " + k));
        return b;
    }

    private JsonNode call(String method, String path, JsonNode body) throws IOException, InterruptedException {
        HttpRequest.Builder b = request(method, path);
        if (body != null) {
            b.header("Content-Type", "application/json")
                    .method(method, HttpRequest.BodyPublishers.ofString(JSON.writeValueAsString(body)));
        }
        return checked(http.send(b.build(), HttpResponse.BodyHandlers.ofString()));
    }

    private static JsonNode checked(HttpResponse<String> r) throws IOException {
        if (r.statusCode() >= 300) {
            throw new Refused(r.statusCode(), r.body());
        }
        return JSON.readTree(r.body());
    }

    private void print(JsonNode node) throws IOException {
        out.println(JSON.writeValueAsString(node));
    }

    private static String enc(String s) {
        return URLEncoder.encode(s, StandardCharsets.UTF_8);
    }

    private static double number(String v, String flag) {
        try {
            return Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(flag + " takes a number, got '" + v + "'");
        }
    }

    private static Optional<String> take(List<String> args, String flag) {
        int i = args.indexOf(flag);
        if (i < 0) {
            return Optional.empty();
        }
        if (i + 1 >= args.size()) {
            throw new IllegalArgumentException(flag + " needs a value");
        }
        String value = args.get(i + 1);
        args.remove(i + 1);
        args.remove(i);
        return Optional.of(value);
    }

    private static String single(List<String> args, String usage) {
        if (args.size() != 1) {
            throw new IllegalArgumentException("usage: " + usage);
        }
        return args.get(0);
    }

    static Map<String, String> env(String... pairs) {
        Map<String, String> m = new LinkedHashMap<>();
        for (int i = 0; i + 1 < pairs.length; i += 2) {
            m.put(pairs[i], pairs[i + 1]);
        }
        return m;
    }
}
