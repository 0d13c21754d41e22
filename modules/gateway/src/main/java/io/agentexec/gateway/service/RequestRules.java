package io.agentexec.gateway.service;

import io.agentexec.cluster.executors.CodePolicy;
import io.agentexec.cluster.executors.ExecutorOptions;
import io.agentexec.cluster.executors.ExecutorProfiles;
import io.agentexec.cluster.executors.SeedExecutors;
import io.agentexec.cluster.executors.TestSuite;
import io.agentexec.gateway.GatewaySettings;
import io.agentexec.gateway.tenant.TenantPolicy;
import io.agentexec.sandbox.blocks.FilenameDirective;
import io.agentexec.sandbox.language.Language;
import io.agentexec.sandbox.language.LanguageTable;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.WorkspaceFile;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.UUID;
import java.util.function.Supplier;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * What a valid request is, for both transports: the one place that decides a language name, a sandbox id, a
 * workspace path, a profile, an image the tenant's policy allows and every limit, and that turns a request into the
 * engine's records. A transport reads its own wire format (HTTP: JSON, gRPC: protobuf) and hands each field to a
 * {@link ExecutionForm} or {@link SandboxForm} in the order it reads them, so that the first problem is the one
 * reported; a form refuses a bad value with a message naming the field.
 */
public final class RequestRules {
    /** A language is a short name, never a path or a command line. */
    private static final Pattern LANGUAGE_NAME = Pattern.compile("[A-Za-z][A-Za-z0-9+#._-]{0,31}");
    private static final Pattern SANDBOX_ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._-]{0,127}");
    /** What is shown of a value in a message: enough to recognise it, never a whole body. */
    private static final int SHOWN_CHARACTERS = 64;
    private static final long MB = 1024L * 1024;

    /** The limits a request may set, as both protocols name them (HTTP's JSON keys), in the order they are checked. */
    public enum Limit {
        TIMEOUT_SECONDS("timeoutSeconds", false),
        MEMORY_MB("memoryMb", true),
        CPUS("cpus", false),
        PIDS("pids", true),
        OUTPUT_BYTES("outputBytes", true);

        private final String field;
        private final boolean integral;

        Limit(String field, boolean integral) {
            this.field = field;
            this.integral = integral;
        }

        public String field() {
            return field;
        }

        public static Set<String> fields() {
            return Arrays.stream(values()).map(Limit::field).collect(Collectors.toUnmodifiableSet());
        }
    }

    /**
     * A checked execution: the engine's request, the sandbox to run it in, if any, the seed's executors it asks for
     * (its profile's name included) and what the caller should know (a profile's value held at a ceiling).
     */
    public record ExecutionSpec(ExecutionRequest request, Optional<String> sandboxId, ExecutorOptions options,
                                List<String> notes) {
        public ExecutionSpec {
            notes = List.copyOf(notes);
        }

        /**
         * The request under its sandbox's executor defaults: the request's own options win, field by field (a
         * sandbox holds no tests, so a request's tests are its own).
         */
        public ExecutionSpec underDefaults(ExecutorOptions defaults) {
            return defaults.isEmpty() ? this : new ExecutionSpec(request, sandboxId, defaults.overriddenBy(options), notes);
        }

        /** Whether a run needs the seed's executors around it (a policy, retries, the cache, tests). */
        public boolean needsExecutors() {
            return options.policy().isPresent() || options.retries().isPresent() || options.caching()
                    || options.tests().isPresent();
        }
    }

    /** A checked sandbox creation. */
    public record SandboxSpec(String language, Limits limits, Optional<String> image, ExecutorOptions options) {
        /** As the execution port takes it. */
        public io.agentexec.cluster.api.SandboxSpec toCluster() {
            io.agentexec.cluster.api.SandboxSpec spec = io.agentexec.cluster.api.SandboxSpec.of(language, limits);
            return image.map(spec::withImage).orElse(spec);
        }
    }

    private final LanguageTable languages;
    private final Limits engineDefaults;
    private final SeedExecutors executors;

    /** {@code executors}: the one table of profiles and the code policies (agentexec.executors), shared with the agents. */
    public RequestRules(LanguageTable languages, Limits engineDefaults, SeedExecutors executors) {
        this.languages = languages;
        this.engineDefaults = engineDefaults;
        this.executors = executors;
    }

    /** An empty execution request of a tenant held to {@code policy}. */
    public ExecutionForm execution(TenantPolicy policy) {
        return new ExecutionForm(policy);
    }

    /** An empty sandbox creation of a tenant held to {@code policy}. */
    public SandboxForm sandbox(TenantPolicy policy) {
        return new SandboxForm(policy);
    }

    /** The languages requests may name. */
    public LanguageTable languages() {
        return languages;
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

    /** A sandbox id as a client names one: checked, returned as given. */
    public static String sandboxId(String id) {
        if (!SANDBOX_ID.matcher(id).matches()) {
            throw ApiException.badRequest("a sandbox id is 1 to 128 letters, digits, '.', '_' or '-'; got '" + abbreviate(id) + "'");
        }
        return id;
    }

    /** A new sandbox id, as the gateway hands them out. */
    public static String newSandboxId() {
        return "sbx-" + UUID.randomUUID();
    }

    /** A client's value as a message shows it: control characters replaced, at most 64 characters. */
    public static String abbreviate(String s) {
        String clean = s.replaceAll("\\p{Cntrl}", "?");
        return clean.length() <= SHOWN_CHARACTERS ? clean : clean.substring(0, SHOWN_CHARACTERS - 3) + "...";
    }

    /**
     * What executions and sandboxes both choose: a profile, limits and an image. Limits start from the engine's
     * defaults, then the profile's, then the request's (each checked and brought under the policy's ceiling), and are
     * clamped to the policy at the end; the image is the request's, else the profile's, and must be one the policy
     * allows.
     */
    public abstract sealed class Form permits ExecutionForm, SandboxForm {
        private final TenantPolicy policy;
        private Optional<ExecutorProfiles.Profile> profile = Optional.empty();
        private Optional<String> image = Optional.empty();
        private Limits limits = engineDefaults;
        /** The seed's executors the request asks for; a sandbox's are its runs' defaults. */
        ExecutorOptions options = ExecutorOptions.none();
        final List<String> notes = new ArrayList<>();

        private Form(TenantPolicy policy) {
            this.policy = policy;
        }

        /** The executor options read so far. */
        public ExecutorOptions options() {
            return options;
        }

        /**
         * The named profile of agentexec.executors.profiles (the seed's simple / medium / complex, default,
         * datascience, the operator's); give it before any limit (a request's limits override the profile's). A value
         * above the policy's ceiling is held there, and a note says so.
         */
        public void profile(String name) {
            ExecutorProfiles.Profile chosen;
            try {
                chosen = executors.profiles().get(name);
                limits = chosen.over(limits);
                notes.addAll(executors.applyProfile(name, limits, policy.execution()).notes());
            } catch (InvalidRequestException e) {
                throw ApiException.badRequest(e.getMessage());
            }
            profile = Optional.of(chosen);
            options = options.withProfile(name);
        }

        /**
         * One limit: a positive, finite number (a whole one where the limit counts things), brought under the policy's
         * ceiling before it becomes a {@link Limits} (which refuses absurd values).
         *
         * @param shown the value as the client wrote it, for the message
         */
        public void limit(Limit which, double value, String shown) {
            String name = "limits." + which.field();
            if (!Double.isFinite(value)) {
                throw ApiException.badRequest(name + " must be a finite number");
            }
            if (!(value > 0)) {
                throw ApiException.badRequest(name + " must be positive; got " + shown);
            }
            if (which.integral && value != Math.rint(value)) {
                throw ApiException.badRequest(name + " must be a whole number; got " + shown);
            }
            Limits ceilings = policy.execution().ceilings();
            try {
                limits = switch (which) {
                    case TIMEOUT_SECONDS -> limits.withTimeout(seconds(Math.min(value, ceilings.timeout().toMillis() / 1000.0)));
                    case MEMORY_MB -> limits.withMemoryBytes((long) Math.min(value, (double) (ceilings.memoryBytes() / MB)) * MB);
                    case CPUS -> limits.withCpus(Math.min(value, ceilings.cpus()));
                    case PIDS -> limits.withPids((int) Math.min(value, ceilings.pids()));
                    case OUTPUT_BYTES -> limits.withOutputBytesPerStream((long) Math.min(value,
                            (double) ceilings.outputBytesPerStream()));
                };
            } catch (InvalidRequestException e) {
                throw ApiException.badRequest(e.getMessage());
            }
        }

        /** The image the request names (else the profile's is taken, if it has one). */
        public void image(String requested) {
            image = Optional.of(requested);
        }

        /** SecureCodeExecutor by name: a preset of agentexec.executors.policies ({@code secure}: the seed's lists). */
        public void policy(String preset) {
            try {
                options = options.withPolicy(executors.policy(preset));
            } catch (InvalidRequestException e) {
                throw ApiException.badRequest(e.getMessage());
            }
        }

        /** SecureCodeExecutor with the request's own forbidden patterns (each: "Potentially unsafe code detected: P"). */
        public void policyPatterns(List<String> patterns) {
            if (patterns.isEmpty() || patterns.stream().anyMatch(String::isEmpty)) {
                throw ApiException.badRequest("policy: a list of patterns must be non-empty, without empty patterns");
            }
            options = options.withPolicy(CodePolicy.patterns(patterns));
        }

        /** RobustCodeExecutor: the most attempts of a failing run, 1 to agentexec.executors.max-retries. */
        public void retries(long attempts) {
            if (attempts < 1 || attempts > executors.settings().maxRetries()) {
                throw ApiException.badRequest("retries: the most attempts of a failing run, 1 to "
                        + executors.settings().maxRetries() + " (agentexec.executors.max-retries); got " + attempts);
            }
            options = options.withRetries((int) attempts);
        }

        /** CachingExecutor: answer an identical request of the tenant's from the cluster's cache. */
        public void cache(boolean on) {
            options = options.withCache(on);
        }

        /** The name the run is counted under in GET /v1/stats (default: the executor's own). */
        public void executor(String name) {
            try {
                options = options.withExecutor(name);
            } catch (InvalidRequestException e) {
                throw ApiException.badRequest(e.getMessage());
            }
        }

        Limits limits() {
            return policy.execution().clamp(limits);
        }

        /** The request's image, else the profile's: either must be one the policy allows. */
        Optional<String> checkedImage() {
            Optional<String> chosen = image.or(() -> profile.flatMap(ExecutorProfiles.Profile::image));
            chosen.ifPresent(i -> {
                if (!policy.execution().imageAllowed(i, languages)) {
                    throw ApiException.badRequest("image '" + abbreviate(i) + "' is not allowed; allowed: "
                            + String.join(", ", policy.execution().imagesAllowed(languages)));
                }
            });
            return chosen;
        }
    }

    /** An execution as a transport reads it, field by field; {@link #build} checks what is left and makes the request. */
    public final class ExecutionForm extends Form {
        private final ExecutionRequest.Builder builder = ExecutionRequest.builder(engineDefaults);
        private Optional<String> sandboxId = Optional.empty();

        private ExecutionForm(TenantPolicy policy) {
            super(policy);
        }

        /** Run in this sandbox (of the caller's) rather than a fresh one. */
        public void sandbox(String id) {
            sandboxId = Optional.of(sandboxId(id));
        }

        /** A code block; its code is read once its language is known good (the first problem is the one reported). */
        public void block(String language, Supplier<String> code) {
            String name = language(language).name();
            builder.block(name, code.get());
        }

        public void stdin(String text) {
            builder.stdin(text);
        }

        public void file(String path, byte[] content) {
            builder.file(new WorkspaceFile(workspacePath(path), content));
        }

        public void environment(String name, String value) {
            builder.env(name, value);
        }

        /** TestingExecutor, Judge0's way: one run per case with its stdin, PASS when stdout is the expected one. */
        public void ioTests(List<TestSuite.IoCase> cases) {
            tests(() -> new TestSuite.IoCases(cases));
        }

        /** TestingExecutor, the seed's way: Python lines appending booleans to test_results, run after the code. */
        public void assertionTests(List<String> cases) {
            tests(() -> new TestSuite.Assertions(cases));
        }

        private void tests(Supplier<TestSuite> suite) {
            try {
                TestSuite tests = suite.get();
                if (tests.size() > executors.settings().maxTests()) {
                    throw ApiException.badRequest("tests: at most " + executors.settings().maxTests()
                            + " cases (agentexec.executors.max-tests); got " + tests.size());
                }
                options = options.withTests(tests);
            } catch (InvalidRequestException e) {
                throw ApiException.badRequest(e.getMessage());
            }
        }

        public ExecutionSpec build() {
            Limits limits = limits();
            checkedImage().ifPresent(builder::image);
            try {
                return new ExecutionSpec(builder.limits(limits).build(), sandboxId, options, notes);
            } catch (InvalidRequestException e) {
                throw ApiException.badRequest(e.getMessage());
            }
        }
    }

    /** A sandbox creation as a transport reads it. */
    public final class SandboxForm extends Form {
        private Optional<Language> language = Optional.empty();

        private SandboxForm(TenantPolicy policy) {
            super(policy);
        }

        public void language(String value) {
            language = Optional.of(RequestRules.this.language(value));
        }

        public SandboxSpec build() {
            Language chosen = language.orElseThrow(() -> ApiException.badRequest("'language' is required"));
            return new SandboxSpec(chosen.name(), limits(), checkedImage(), options);
        }
    }

    private static Duration seconds(double value) {
        return Duration.ofMillis(Math.max(1, Math.round(value * 1000)));
    }
}
