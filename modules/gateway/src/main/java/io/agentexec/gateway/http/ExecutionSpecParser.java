package io.agentexec.gateway.http;

import com.fasterxml.jackson.databind.JsonNode;
import io.agentexec.cluster.executors.TestSuite;
import io.agentexec.gateway.service.ApiException;
import io.agentexec.gateway.service.RequestRules;
import io.agentexec.gateway.service.RequestRules.ExecutionForm;
import io.agentexec.gateway.service.RequestRules.Form;
import io.agentexec.gateway.service.RequestRules.Limit;
import io.agentexec.gateway.service.RequestRules.SandboxForm;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Reads the JSON of an execution or sandbox request into the service's form: JSON's own checks (an object, known
 * fields, the types of values, base64) here, each field handed to the form as it is read; what a valid value is the
 * form decides ({@link RequestRules}), for gRPC too.
 */
final class ExecutionSpecParser {
    private static final Set<String> EXECUTION_FIELDS = Set.of("language", "code", "blocks", "stdin", "files", "image",
            "sandboxId", "profile", "limits", "environment", "policy", "retries", "cache", "tests", "executor");
    private static final Set<String> SANDBOX_FIELDS = Set.of("language", "image", "profile", "limits", "policy", "retries",
            "cache", "executor");
    private static final Set<String> TEST_FIELDS = Set.of("stdin", "expectedStdout");
    private static final Set<String> FILE_FIELDS = Set.of("path", "content", "encoding");
    private static final Set<String> BLOCK_FIELDS = Set.of("language", "code");

    private ExecutionSpecParser() {
    }

    /** An execution; {@code pathSandboxId} (from the route) wins over the body's {@code sandboxId}. */
    static void execution(JsonNode body, Optional<String> pathSandboxId, ExecutionForm form) {
        requireObject(body, "the request body");
        checkFields(body, EXECUTION_FIELDS, "");
        pathSandboxId.or(() -> optionalText(body, "sandboxId")).ifPresent(form::sandbox);
        sizing(body, form);
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
                checkFields(block, BLOCK_FIELDS, "blocks[" + i + "].");
                String where = "blocks[" + i + "].";
                form.block(requiredText(block, "language", where + "language"), () -> requiredText(block, "code", where + "code"));
            }
        } else {
            form.block(requiredText(body, "language", "language"), () -> requiredText(body, "code", "code"));
        }
        optionalText(body, "stdin").ifPresent(form::stdin);
        JsonNode files = body.get("files");
        if (files != null && !files.isNull()) {
            if (!files.isArray()) {
                throw ApiException.badRequest("'files' must be an array of {path, content, encoding?}");
            }
            for (int i = 0; i < files.size(); i++) {
                file(files.get(i), "files[" + i + "]", form);
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
                form.environment(name, env.get(name).asText());
            }
        }
        optionalText(body, "image").ifPresent(form::image);
        executors(body, form);
        tests(body.get("tests"), form);
    }

    /**
     * The seed's executors: {@code policy} (a preset's name, or a list of forbidden patterns), {@code retries} (the
     * most attempts), {@code cache} (a boolean), {@code executor} (the name the runs are counted under).
     */
    private static void executors(JsonNode body, Form form) {
        JsonNode policy = body.get("policy");
        if (policy != null && !policy.isNull()) {
            if (policy.isTextual()) {
                form.policy(policy.asText());
            } else if (policy.isArray()) {
                List<String> patterns = new ArrayList<>();
                for (int i = 0; i < policy.size(); i++) {
                    if (!policy.get(i).isTextual()) {
                        throw ApiException.badRequest("policy[" + i + "] must be a string; got " + describe(policy.get(i)));
                    }
                    patterns.add(policy.get(i).asText());
                }
                form.policyPatterns(patterns);
            } else {
                throw ApiException.badRequest("'policy' must be a preset's name (e.g. \"secure\") or a list of "
                        + "forbidden patterns; got " + describe(policy));
            }
        }
        JsonNode retries = body.get("retries");
        if (retries != null && !retries.isNull()) {
            if (!retries.isIntegralNumber()) {
                throw ApiException.badRequest("'retries' must be a whole number of attempts; got " + describe(retries));
            }
            form.retries(retries.asLong());
        }
        JsonNode cache = body.get("cache");
        if (cache != null && !cache.isNull()) {
            if (!cache.isBoolean()) {
                throw ApiException.badRequest("'cache' must be true or false; got " + describe(cache));
            }
            form.cache(cache.asBoolean());
        }
        optionalText(body, "executor").ifPresent(form::executor);
    }

    /**
     * {@code tests}: a list of {@code {stdin, expectedStdout}} cases (one run each), or of the seed's assertion lines
     * (Python appending a boolean to {@code test_results}); not both styles in one list.
     */
    private static void tests(JsonNode tests, ExecutionForm form) {
        if (tests == null || tests.isNull()) {
            return;
        }
        if (!tests.isArray() || tests.isEmpty()) {
            throw ApiException.badRequest("'tests' must be a non-empty list of {stdin, expectedStdout} cases or of "
                    + "assertion strings");
        }
        if (tests.get(0).isTextual()) {
            List<String> lines = new ArrayList<>();
            for (int i = 0; i < tests.size(); i++) {
                if (!tests.get(i).isTextual()) {
                    throw ApiException.badRequest("tests[" + i + "] must be a string like the others; got "
                            + describe(tests.get(i)));
                }
                lines.add(tests.get(i).asText());
            }
            form.assertionTests(lines);
            return;
        }
        List<TestSuite.IoCase> cases = new ArrayList<>();
        for (int i = 0; i < tests.size(); i++) {
            JsonNode c = tests.get(i);
            String where = "tests[" + i + "]";
            requireObject(c, where);
            checkFields(c, TEST_FIELDS, where + ".");
            String stdin = c.has("stdin") && !c.get("stdin").isNull() ? requiredText(c, "stdin", where + ".stdin") : "";
            cases.add(new TestSuite.IoCase(stdin, requiredText(c, "expectedStdout", where + ".expectedStdout")));
        }
        form.ioTests(cases);
    }

    /**
     * A sandbox: its language is checked before its limits, as it always was; the seed's executors given here are its
     * runs' defaults.
     */
    static void sandbox(JsonNode body, SandboxForm form) {
        requireObject(body, "the request body");
        if (body.has("tests")) {
            throw ApiException.badRequest("tests: a sandbox cannot hold test cases for its runs; give them with an "
                    + "execution");
        }
        checkFields(body, SANDBOX_FIELDS, "");
        optionalText(body, "profile").ifPresent(form::profile);
        form.language(requiredText(body, "language", "language"));
        limits(body.get("limits"), form);
        optionalText(body, "image").ifPresent(form::image);
        // the defaults of the sandbox's runs (each run's own options win, field by field)
        executors(body, form);
    }

    /** The profile, then the limits (a request's limits override its profile's). */
    private static void sizing(JsonNode body, Form form) {
        optionalText(body, "profile").ifPresent(form::profile);
        limits(body.get("limits"), form);
    }

    private static void limits(JsonNode node, Form form) {
        if (node == null || node.isNull()) {
            return;
        }
        requireObject(node, "'limits'");
        checkFields(node, Limit.fields(), "limits.");
        for (Limit limit : Limit.values()) {
            JsonNode v = node.get(limit.field());
            if (v != null) {
                if (!v.isNumber()) {
                    throw ApiException.badRequest("limits." + limit.field() + " must be a number; got " + describe(v));
                }
                form.limit(limit, v.asDouble(), v.toString());
            }
        }
    }

    private static void file(JsonNode node, String where, ExecutionForm form) {
        requireObject(node, where);
        checkFields(node, FILE_FIELDS, where + ".");
        // the path is checked as it is read, before the content: the first problem is the one reported
        String path = RequestRules.workspacePath(requiredText(node, "path", where + ".path"));
        String content = requiredText(node, "content", where + ".content");
        String encoding = optionalText(node, "encoding").orElse("utf-8");
        byte[] bytes = switch (encoding) {
            case "utf-8" -> content.getBytes(StandardCharsets.UTF_8);
            case "base64" -> {
                try {
                    yield Base64.getDecoder().decode(content);
                } catch (IllegalArgumentException e) {
                    throw ApiException.badRequest(where + ".content is not valid base64");
                }
            }
            default -> throw ApiException.badRequest(where + ".encoding must be utf-8 or base64; got '"
                    + RequestRules.abbreviate(encoding) + "'");
        };
        form.file(path, bytes);
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
                throw ApiException.badRequest("unknown field '" + prefix + RequestRules.abbreviate(name) + "'; allowed: "
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
        return v.getNodeType().name().toLowerCase(java.util.Locale.ROOT) + " " + RequestRules.abbreviate(v.toString());
    }
}
