package io.agentexec.gateway.http;

import com.fasterxml.jackson.databind.JsonNode;
import io.agentexec.gateway.GatewaySettings;
import io.agentexec.gateway.tenant.TenantPolicy;
import io.agentexec.sandbox.blocks.FilenameDirective;
import io.agentexec.sandbox.language.Language;
import io.agentexec.sandbox.language.LanguageTable;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.WorkspaceFile;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Base64;
import java.util.Iterator;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Turns the JSON of an execution or sandbox request into the engine's records, refusing anything
 * that cannot run with a message naming the field. Shared by HTTP and gRPC (which builds the same tree).
 */
public final class ExecutionSpecParser {
    /** A language is a short name, never a path or a command line. */
    private static final Pattern LANGUAGE_NAME = Pattern.compile("[A-Za-z][A-Za-z0-9+#._-]{0,31}");
    private static final Pattern SANDBOX_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    private static final Set<String> EXECUTION_FIELDS = Set.of("language", "code", "blocks", "stdin", "files", "image",
            "sandboxId", "profile", "limits", "environment");
    private static final Set<String> SANDBOX_FIELDS = Set.of("language", "image", "profile", "limits");
    private static final Set<String> LIMIT_FIELDS = Set.of("timeoutSeconds", "memoryMb", "cpus", "pids", "outputBytes");
    private static final long MB = 1024L * 1024;

    /** A parsed execution: the engine's request and the sandbox to run it in, if any. */
    public record ExecutionSpec(ExecutionRequest request, Optional<String> sandboxId) { }

    /** A parsed sandbox creation. */
    public record SandboxSpec(String language, Limits limits, Optional<String> image) {
        /** As the execution port takes it. */
        public io.agentexec.cluster.api.SandboxSpec toCluster() {
            io.agentexec.cluster.api.SandboxSpec spec = io.agentexec.cluster.api.SandboxSpec.of(language, limits);
            return image.map(spec::withImage).orElse(spec);
        }
    }

    /** A new sandbox id, as the gateway hands them out. */
    public static String newSandboxId() {
        return "sbx-" + java.util.UUID.randomUUID();
    }

    private final GatewaySettings settings;
    private final LanguageTable languages;
    private final Limits engineDefaults;

    public ExecutionSpecParser(GatewaySettings settings, LanguageTable languages, Limits engineDefaults) {
        this.settings = settings;
        this.languages = languages;
        this.engineDefaults = engineDefaults;
    }

    public ExecutionSpec execution(JsonNode body, TenantPolicy policy, Optional<String> pathSandboxId) {
        requireObject(body, "the request body");
        checkFields(body, EXECUTION_FIELDS, "");
        Optional<String> sandboxId = pathSandboxId.or(() -> optionalText(body, "sandboxId"));
        sandboxId.ifPresent(ExecutionSpecParser::checkSandboxId);
        Optional<GatewaySettings.Profile> profile = profile(body);
        ExecutionRequest.Builder builder = ExecutionRequest.builder(limits(body.get("limits"), profile, policy));
        if (body.has("blocks")) {
            if (body.has("code") || body.has("language")) {
                throw ApiException.badRequest("give either 'blocks' or 'language' and 'code', not both");
            }
            JsonNode blocks = body.get("blocks");
            if (!blocks.isArray() || blocks.isEmpty()) {
                throw ApiException.badRequest("'blocks' must be a non-empty array of {language, code}");
            }
            for (int i = 0; i < blocks.size(); i++) {
                JsonNode block = blocks.get(i);
                requireObject(block, "blocks[" + i + "]");
                checkFields(block, Set.of("language", "code"), "blocks[" + i + "].");
                builder.block(language(requiredText(block, "language", "blocks[" + i + "].language")).name(),
                        requiredText(block, "code", "blocks[" + i + "].code"));
            }
        } else {
            Language language = language(requiredText(body, "language", "language"));
            builder.block(language.name(), requiredText(body, "code", "code"));
        }
        optionalText(body, "stdin").ifPresent(builder::stdin);
        JsonNode files = body.get("files");
        if (files != null && !files.isNull()) {
            if (!files.isArray()) {
                throw ApiException.badRequest("'files' must be an array of {path, content, encoding?}");
            }
            for (int i = 0; i < files.size(); i++) {
                builder.file(file(files.get(i), "files[" + i + "]"));
            }
        }
        JsonNode env = body.get("environment");
        if (env != null && !env.isNull()) {
            requireObject(env, "'environment'");
            for (Iterator<String> it = env.fieldNames(); it.hasNext(); ) {
                String name = it.next();
                if (!env.get(name).isTextual()) {
                    throw ApiException.badRequest("environment." + name + " must be a string");
                }
                builder.env(name, env.get(name).asText());
            }
        }
        image(body, profile, policy).ifPresent(builder::image);
        try {
            return new ExecutionSpec(builder.build(), sandboxId);
        } catch (InvalidRequestException e) {
            throw ApiException.badRequest(e.getMessage());
        }
    }

    public SandboxSpec sandbox(JsonNode body, TenantPolicy policy) {
        requireObject(body, "the request body");
        checkFields(body, SANDBOX_FIELDS, "");
        Optional<GatewaySettings.Profile> profile = profile(body);
        Language language = language(requiredText(body, "language", "language"));
        return new SandboxSpec(language.name(), limits(body.get("limits"), profile, policy), image(body, profile, policy));
    }

    /** A language name or alias; refuses paths and commands before looking it up. */
    public Language language(String value) {
        if (!LANGUAGE_NAME.matcher(value).matches()) {
            throw ApiException.badRequest("'language' must be a language name such as python, bash or javascript; got '"
                    + abbreviate(value) + "'");
        }
        return languages.find(value).orElseThrow(() -> ApiException.badRequest("unknown language '" + value
                + "'; known: " + String.join(", ", languages.all().stream().map(Language::name).toList())));
    }

    /** A workspace-relative path: no absolute paths, no '..', no NUL, no empty segment. */
    public static String workspacePath(String path) {
        if (path.isEmpty() || path.startsWith("/") || path.indexOf('\0') >= 0 || path.endsWith("/")) {
            throw ApiException.badRequest("a file path must be relative to the workspace; got '" + abbreviate(path) + "'");
        }
        for (String segment : path.split("/", -1)) {
            if (segment.isEmpty() || segment.equals("..") || segment.equals(".")) {
                throw ApiException.badRequest("a file path must stay inside the workspace; got '" + abbreviate(path) + "'");
            }
        }
        FilenameDirective.check(path).ifPresent(problem -> {
            throw ApiException.badRequest(problem);
        });
        return path;
    }

    public static void checkSandboxId(String id) {
        if (!SANDBOX_ID.matcher(id).matches()) {
            throw ApiException.badRequest("a sandbox id is 1 to 128 letters, digits, '.', '_' or '-'; got '" + abbreviate(id) + "'");
        }
    }

    private WorkspaceFile file(JsonNode node, String where) {
        requireObject(node, where);
        checkFields(node, Set.of("path", "content", "encoding"), where + ".");
        String path = workspacePath(requiredText(node, "path", where + ".path"));
        String content = requiredText(node, "content", where + ".content");
        String encoding = optionalText(node, "encoding").orElse("utf-8");
        return switch (encoding) {
            case "utf-8" -> new WorkspaceFile(path, content.getBytes(StandardCharsets.UTF_8));
            case "base64" -> {
                try {
                    yield new WorkspaceFile(path, Base64.getDecoder().decode(content));
                } catch (IllegalArgumentException e) {
                    throw ApiException.badRequest(where + ".content is not valid base64");
                }
            }
            default -> throw ApiException.badRequest(where + ".encoding must be utf-8 or base64; got '" + abbreviate(encoding) + "'");
        };
    }

    private Optional<GatewaySettings.Profile> profile(JsonNode body) {
        return optionalText(body, "profile").map(name -> Optional.ofNullable(settings.profiles().get(name))
                .orElseThrow(() -> ApiException.badRequest("unknown profile '" + abbreviate(name) + "'; known: "
                        + String.join(", ", settings.profiles().keySet()))));
    }

    /** The request's image, else the profile's: either must be one the policy allows. */
    private Optional<String> image(JsonNode body, Optional<GatewaySettings.Profile> profile, TenantPolicy policy) {
        Optional<String> image = optionalText(body, "image").or(() -> profile.flatMap(GatewaySettings.Profile::image));
        image.ifPresent(i -> {
            if (!policy.execution().imageAllowed(i, languages)) {
                throw ApiException.badRequest("image '" + abbreviate(i) + "' is not allowed; allowed: "
                        + String.join(", ", policy.execution().imagesAllowed(languages)));
            }
        });
        return image;
    }

    /** Defaults, then the profile, then the request; every value checked, then clamped to the policy's ceilings. */
    Limits limits(JsonNode node, Optional<GatewaySettings.Profile> profile, TenantPolicy policy) {
        Limits ceilings = policy.execution().ceilings();
        Limits limits = engineDefaults;
        try {
            if (profile.isPresent()) {
                if (profile.get().timeoutSeconds().isPresent()) {
                    limits = limits.withTimeout(seconds(profile.get().timeoutSeconds().getAsDouble()));
                }
                if (profile.get().memoryMb().isPresent()) {
                    limits = limits.withMemoryBytes(profile.get().memoryMb().getAsLong() * MB);
                }
            }
            if (node != null && !node.isNull()) {
                requireObject(node, "'limits'");
                checkFields(node, LIMIT_FIELDS, "limits.");
                // each value is brought under its ceiling before it becomes a Limits (which refuses absurd values)
                if (node.has("timeoutSeconds")) {
                    double v = Math.min(positive(node, "timeoutSeconds", false), ceilings.timeout().toMillis() / 1000.0);
                    limits = limits.withTimeout(seconds(v));
                }
                if (node.has("memoryMb")) {
                    limits = limits.withMemoryBytes((long) Math.min(positive(node, "memoryMb", true),
                            (double) (ceilings.memoryBytes() / MB)) * MB);
                }
                if (node.has("cpus")) {
                    limits = limits.withCpus(Math.min(positive(node, "cpus", false), ceilings.cpus()));
                }
                if (node.has("pids")) {
                    limits = limits.withPids((int) Math.min(positive(node, "pids", true), ceilings.pids()));
                }
                if (node.has("outputBytes")) {
                    limits = limits.withOutputBytesPerStream((long) Math.min(positive(node, "outputBytes", true),
                            (double) ceilings.outputBytesPerStream()));
                }
            }
            return policy.execution().clamp(limits);
        } catch (InvalidRequestException e) {
            throw ApiException.badRequest(e.getMessage());
        }
    }

    private static Duration seconds(double value) {
        return Duration.ofMillis(Math.max(1, Math.round(value * 1000)));
    }

    private static double positive(JsonNode limits, String field, boolean integral) {
        JsonNode v = limits.get(field);
        if (!v.isNumber()) {
            throw ApiException.badRequest("limits." + field + " must be a number; got " + describe(v));
        }
        double d = v.asDouble();
        if (!Double.isFinite(d)) {
            throw ApiException.badRequest("limits." + field + " must be a finite number");
        }
        if (!(d > 0)) {
            throw ApiException.badRequest("limits." + field + " must be positive; got " + v);
        }
        if (integral && d != Math.rint(d)) {
            throw ApiException.badRequest("limits." + field + " must be a whole number; got " + v);
        }
        return d;
    }

    private static void requireObject(JsonNode node, String what) {
        if (node == null || !node.isObject()) {
            throw ApiException.badRequest(what + " must be a JSON object");
        }
    }

    private static void checkFields(JsonNode node, Set<String> allowed, String prefix) {
        for (Iterator<String> it = node.fieldNames(); it.hasNext(); ) {
            String name = it.next();
            if (!allowed.contains(name)) {
                throw ApiException.badRequest("unknown field '" + prefix + abbreviate(name) + "'; allowed: "
                        + String.join(", ", allowed.stream().sorted().toList()));
            }
        }
    }

    private static String requiredText(JsonNode node, String field, String where) {
        JsonNode v = node.get(field);
        if (v == null || v.isNull()) {
            throw ApiException.badRequest("'" + where + "' is required");
        }
        if (!v.isTextual()) {
            throw ApiException.badRequest("'" + where + "' must be a string; got " + describe(v));
        }
        return v.asText();
    }

    private static Optional<String> optionalText(JsonNode node, String field) {
        JsonNode v = node.get(field);
        if (v == null || v.isNull()) {
            return Optional.empty();
        }
        if (!v.isTextual()) {
            throw ApiException.badRequest("'" + field + "' must be a string; got " + describe(v));
        }
        return Optional.of(v.asText());
    }

    private static String describe(JsonNode v) {
        return v.getNodeType().name().toLowerCase(java.util.Locale.ROOT) + " " + abbreviate(v.toString());
    }

    static String abbreviate(String s) {
        String clean = s.replaceAll("\\p{Cntrl}", "?");
        return clean.length() <= 64 ? clean : clean.substring(0, 61) + "...";
    }
}
