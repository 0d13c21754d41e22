package io.agentexec.cluster.executors;

import com.typesafe.config.Config;
import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.port.Caller;
import io.agentexec.sandbox.model.CodeBlock;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import io.agentexec.sandbox.policy.ExecutionPolicy;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The seed's executors, defined once for every caller (the gateway's HTTP and gRPC, the agents' chats and Java API, the
 * CLI), on top of the execution port: a caller says how one run is made ({@link Runner}: through the port, in a fresh
 * sandbox or one of its own) and this decides around it, in the seed's order:
 * <ol>
 *   <li>SecureCodeExecutor: the code policy; a broken rule refuses the request with the seed's message, unrun;</li>
 *   <li>TestingExecutor: with tests, one run per I/O case (its stdin), or one run of the seed's assertion harness;</li>
 *   <li>CachingExecutor: an identical request of the same tenant answers from the cluster's cache, marked
 *       {@code [CACHED RESULT]}; a SANDBOX_ERROR (or cancelled) result is never kept;</li>
 *   <li>RobustCodeExecutor: a failing run is run again, up to {@code retries} attempts, each recorded;</li>
 *   <li>execution_stats: each run counted in the tenant's statistics (and given to the node's listeners, Prometheus).</li>
 * </ol>
 * OptimizedExecutor's profiles are applied where the request is built ({@link #applyProfile}), since they set its limits
 * and image. Never blocks.
 */
public final class SeedExecutors {
    private static final Logger log = LoggerFactory.getLogger(SeedExecutors.class);
    /** The seed's CachingExecutor marks a cached answer so. */
    public static final String CACHED_PREFIX = "[CACHED RESULT]\n";
    private static final Set<String> PYTHON = Set.of("python", "py", "python3");

    /** How one run is made: the caller's way through the execution port. */
    public interface Runner {
        /**
         * The id of the {@code sequence}-th run made for this call (1: the first); each attempt and each test case is
         * a run of its own, readable by its id.
         */
        String executionId(int sequence);

        /** Makes the {@code sequence}-th run, of {@code request} under {@code executionId}; completes with its outcome. */
        CompletionStage<ExecutionOutcome> run(int sequence, String executionId, ExecutionRequest request);
    }

    /**
     * One call.
     *
     * @param executionId what the first run is called (and a cached or refused answer is)
     * @param cacheScope  where the run happens beyond the request (a one-off, a sandbox, an agent's image and run args):
     *                    part of the cache key
     * @param source      for the statistics: {@code http}, {@code grpc}, {@code chat}, {@code cli}, {@code java}
     * @param notes       what the caller learnt while building the request (a profile held at a ceiling)
     * @param statsTenant whose statistics the runs count in: the caller's tenant, unless said (a chat of a tenant's run
     *                    as the node, in a runtime without tenants, counts in its tenant's)
     */
    public record Call(Caller caller, String executionId, ExecutionRequest request, ExecutorOptions options,
                       String cacheScope, String source, List<String> notes, Optional<String> statsTenant) {
        public Call(Caller caller, String executionId, ExecutionRequest request, ExecutorOptions options,
                    String cacheScope, String source, List<String> notes) {
            this(caller, executionId, request, options, cacheScope, source, notes, caller.tenant());
        }

        public Call {
            Objects.requireNonNull(statsTenant, "statsTenant");
            Objects.requireNonNull(caller, "caller");
            Objects.requireNonNull(executionId, "executionId");
            Objects.requireNonNull(request, "request");
            Objects.requireNonNull(options, "options");
            Objects.requireNonNull(cacheScope, "cacheScope");
            Objects.requireNonNull(source, "source");
            notes = List.copyOf(notes);
        }
    }

    private final ExecutorSettings settings;
    private final ExecutorProfiles profiles;
    private final ResultCache cache;
    private final ExecutorStats stats;
    private final SandboxDefaults sandboxDefaults;
    private final List<Consumer<StatsSample>> listeners = new CopyOnWriteArrayList<>();

    public SeedExecutors(ExecutorSettings settings, ExecutorProfiles profiles, ResultCache cache, ExecutorStats stats,
                         SandboxDefaults sandboxDefaults) {
        this.settings = Objects.requireNonNull(settings, "settings");
        this.profiles = Objects.requireNonNull(profiles, "profiles");
        this.cache = Objects.requireNonNull(cache, "cache");
        this.stats = Objects.requireNonNull(stats, "stats");
        this.sandboxDefaults = Objects.requireNonNull(sandboxDefaults, "sandboxDefaults");
    }

    /**
     * Cluster-wide: the cache, the statistics and the sandboxes' defaults as sharded, event-sourced entities in the
     * journal.
     */
    public static SeedExecutors cluster(AgentexecCluster cluster, Config root) {
        ExecutorSettings settings = ExecutorSettings.fromConfig(root);
        return new SeedExecutors(settings, ExecutorProfiles.fromConfig(root),
                ClusterResultCache.start(cluster, settings.askTimeout()), ClusterExecutorStats.start(cluster, settings),
                ClusterSandboxDefaults.start(cluster, settings.askTimeout(), rememberedSandboxes(root)));
    }

    /** This JVM alone (the engine-only node, the CLI): cache, statistics and sandbox defaults in memory. */
    public static SeedExecutors local(Config root) {
        ExecutorSettings settings = ExecutorSettings.fromConfig(root);
        return new SeedExecutors(settings, ExecutorProfiles.fromConfig(root), new LocalResultCache(settings.statsSamples()),
                new LocalExecutorStats(settings.statsSamples()), new LocalSandboxDefaults(rememberedSandboxes(root)));
    }

    private static int rememberedSandboxes(Config root) {
        int n = root.getInt("agentexec.executors.sandbox-defaults.remembered");
        if (n < 1) {
            throw new IllegalArgumentException("agentexec.executors.sandbox-defaults.remembered must be at least 1, got " + n);
        }
        return n;
    }

    /**
     * Keeps the executor options a sandbox is created with as its runs' defaults. Refuses what a sandbox cannot hold
     * (tests: each run brings its own cases) and options beyond the bounds, naming the field.
     */
    public CompletionStage<Void> keepSandboxDefaults(Caller caller, String sandboxId, ExecutorOptions options) {
        if (options.tests().isPresent()) {
            throw new InvalidRequestException("tests: a sandbox cannot hold test cases for its runs; give them with an "
                    + "execution");
        }
        settings.check(options);
        return sandboxDefaults.keep(caller.tenant(), sandboxId, options);
    }

    /** The options a sandbox was created with (none when it was created without any). */
    public CompletionStage<ExecutorOptions> sandboxDefaults(Caller caller, String sandboxId) {
        return sandboxDefaults.of(caller.tenant(), sandboxId);
    }

    public ExecutorSettings settings() {
        return settings;
    }

    public ExecutorProfiles profiles() {
        return profiles;
    }

    /** Gets every sample this node records (the node's Prometheus counters). */
    public void onSample(Consumer<StatsSample> listener) {
        listeners.add(listener);
    }

    /** The preset {@code name} ({@code secure}: the seed's lists); {@link InvalidRequestException} naming it otherwise. */
    public CodePolicy policy(String name) {
        return settings.policy(name);
    }

    /** OptimizedExecutor: profile {@code name} over {@code base}, under {@code policy}'s ceilings, with its notes. */
    public ExecutorProfiles.Applied applyProfile(String name, Limits base, ExecutionPolicy policy) {
        return profiles.apply(name, base, policy);
    }

    /** The caller's statistics, optionally of one executor (agent) only. */
    public CompletionStage<StatsReport> stats(Caller caller, Optional<String> executor) {
        return stats.report(caller.tenant(), executor);
    }

    /** Runs the call; fails only with {@link InvalidRequestException} for options that cannot be met (naming the field). */
    public CompletionStage<ExecutorOutcome> run(Call call, Runner runner) {
        try {
            settings.check(call.options());
            call.options().tests().ifPresent(t -> checkTests(t, call.request()));
        } catch (InvalidRequestException e) {
            return CompletableFuture.failedFuture(e);
        }
        ExecutorOptions options = call.options();
        Optional<CodePolicy.Violation> violation = options.policy().flatMap(p -> p.check(call.request().blocks()));
        if (violation.isPresent()) {
            ExecutionResult refused = ExecutionResult.refused(Verdict.POLICY_VIOLATION, 1, violation.get().message(),
                    "policy");
            return record(call, call.request(), refused.verdict().name(), false, 0, false, 0).thenApply(v -> new ExecutorOutcome(new ExecutionOutcome.Completed(call.executionId(),
                    refused, List.of(), Optional.empty(), false), false, List.of(), violation, Optional.empty(),
                    options.profile(), call.notes()));
        }
        AtomicInteger sequence = new AtomicInteger();
        if (options.tests().isPresent()) {
            return runTests(call, runner, sequence, options.tests().get());
        }
        return single(call, call.request(), runner, sequence).thenApply(s -> new ExecutorOutcome(withNotes(s.outcome,
                call.notes()), s.cached, s.attempts, Optional.empty(), Optional.empty(), options.profile(), call.notes()));
    }

    private static void checkTests(TestSuite tests, ExecutionRequest request) {
        if (tests instanceof TestSuite.Assertions && (request.blocks().size() != 1
                || !PYTHON.contains(request.blocks().get(0).language()))) {
            throw new InvalidRequestException("tests: assertions (the seed's test_results.append(...) lines) test one "
                    + "python block; give I/O cases {stdin, expectedStdout} for other code");
        }
    }

    // ---- one request: cache, then attempts

    /** What one request came to: its last outcome, whether it was cached, its attempts. */
    private record Single(ExecutionOutcome outcome, boolean cached, List<AttemptRecord> attempts) {
    }

    private CompletionStage<Single> single(Call call, ExecutionRequest request, Runner runner, AtomicInteger sequence) {
        if (!call.options().caching()) {
            return attempts(call, request, runner, sequence, new ArrayList<>())
                    .thenCompose(s -> recordRun(call, request, s).thenApply(v -> s));
        }
        String key = CacheKey.of(call.cacheScope(), request);
        Optional<String> tenant = call.caller().tenant();
        return cache.lookup(tenant, key)
                .exceptionally(e -> {
                    // a cache that cannot be read is a miss, never a failed run
                    log.warn("result cache lookup failed ({}); running the code", e.toString());
                    return Optional.empty();
                })
                .thenCompose(hit -> {
                    Optional<ResultCache.CachedRun> fresh = hit.filter(h ->
                            !h.storedAt().plus(settings.cacheTtl()).isBefore(Instant.now()));
                    if (fresh.isPresent()) {
                        String id = runner.executionId(sequence.incrementAndGet());
                        ExecutionResult r = cachedAnswer(fresh.get().result());
                        return record(call, request, r.verdict().name(), r.succeeded(), 0, true, 0)
                                .thenApply(v -> new Single(new ExecutionOutcome.Completed(id, r, List.of(),
                                        Optional.empty(), false), true, List.of()));
                    }
                    return attempts(call, request, runner, sequence, new ArrayList<>()).thenCompose(s ->
                            recordRun(call, request, s).thenCompose(v -> keep(tenant, key, s.outcome)).thenApply(v -> s));
                });
    }

    /** The seed's marked answer: {@code [CACHED RESULT]} before the output and AG2's reply. */
    static ExecutionResult cachedAnswer(ExecutionResult r) {
        return new ExecutionResult(r.verdict(), r.exitCode(), r.signal(), r.stdout(), r.stderr(),
                CACHED_PREFIX + r.output(), r.stdoutTruncated(), r.stderrTruncated(), r.stdoutBytes(), r.stderrBytes(),
                r.wallTimeMs(), r.peakMemoryBytes(), r.filesWritten(), r.blocks(), r.message(), r.backend(),
                CACHED_PREFIX + r.ag2Reply());
    }

    private CompletionStage<Void> keep(Optional<String> tenant, String key, ExecutionOutcome outcome) {
        if (!(outcome instanceof ExecutionOutcome.Completed c) || !ResultCache.cacheable(c.result().verdict())
                || c.workspaceLost().isPresent() || c.mayHaveRunMoreThanOnce()
                || c.result().output().getBytes(StandardCharsets.UTF_8).length > settings.cacheMaxBytes()) {
            return CompletableFuture.completedFuture(null);
        }
        return cache.store(tenant, key, new ResultCache.CachedRun(c.result(), Instant.now()))
                .exceptionally(e -> {
                    log.warn("result cache store failed ({}); the result is answered uncached", e.toString());
                    return null;
                });
    }

    private CompletionStage<Single> attempts(Call call, ExecutionRequest request, Runner runner, AtomicInteger sequence,
                                             List<AttemptRecord> history) {
        int attempt = history.size() + 1;
        int n = sequence.incrementAndGet();
        String id = runner.executionId(n);
        CompletionStage<ExecutionOutcome> run;
        try {
            run = runner.run(n, id, request);
        } catch (RuntimeException e) {
            run = CompletableFuture.failedFuture(e);
        }
        return run.thenCompose(outcome -> {
            history.add(attemptRecord(attempt, id, outcome));
            if (attempt >= call.options().attempts() || !retryable(outcome)) {
                return CompletableFuture.completedFuture(new Single(outcome, false, List.copyOf(history)));
            }
            return attempts(call, request, runner, sequence, history);
        });
    }

    /**
     * Whether another attempt may help: a run that failed (user-code error, timeout, memory, output, the sandbox) or
     * whose worker was lost. Never an OK, a policy refusal, a cancel, or a refusal where nothing ran (overloaded,
     * rejected, not found: the caller hears of those at once).
     */
    static boolean retryable(ExecutionOutcome outcome) {
        if (outcome instanceof ExecutionOutcome.Completed c) {
            Verdict v = c.result().verdict();
            return v != Verdict.OK && v != Verdict.POLICY_VIOLATION && v != Verdict.CANCELLED;
        }
        return outcome instanceof ExecutionOutcome.SandboxLost;
    }

    private static AttemptRecord attemptRecord(int attempt, String id, ExecutionOutcome outcome) {
        Instant now = Instant.now();
        if (outcome instanceof ExecutionOutcome.Completed c) {
            ExecutionResult r = c.result();
            return new AttemptRecord(attempt, id, r.succeeded(), r.verdict().name(), r.exitCode(), r.wallTimeMs(),
                    r.message(), now);
        }
        String reason = outcome instanceof ExecutionOutcome.SandboxLost l ? l.reason()
                : outcome instanceof ExecutionOutcome.NothingRan n ? n.reason() : "";
        return new AttemptRecord(attempt, id, false, outcome.status().name(), -1, 0, reason, now);
    }

    // ---- tests

    private CompletionStage<ExecutorOutcome> runTests(Call call, Runner runner, AtomicInteger sequence, TestSuite tests) {
        if (tests instanceof TestSuite.Assertions a) {
            CodeBlock block = call.request().blocks().get(0);
            ExecutionRequest program = withBlocks(call.request(),
                    List.of(new CodeBlock(block.language(), TestReport.assertionProgram(block.code(), a.cases()))));
            return single(call, program, runner, sequence).thenApply(s -> {
                List<TestReport.CaseResult> cases = new ArrayList<>();
                Optional<ExecutionResult> result = resultOf(s.outcome);
                List<TestReport.Status> statuses = TestReport.parseAssertions(result.map(ExecutionResult::stdout)
                        .orElse(""), a.cases().size());
                for (int i = 0; i < statuses.size(); i++) {
                    cases.add(new TestReport.CaseResult(i + 1, a.cases().get(i), Optional.empty(), Optional.empty(),
                            statuses.get(i), verdictOf(s.outcome), result.map(ExecutionResult::exitCode).orElse(-1),
                            result.map(ExecutionResult::wallTimeMs).orElse(0L), Optional.of(s.outcome.executionKey())));
                }
                return new ExecutorOutcome(withNotes(s.outcome, call.notes()), s.cached, s.attempts, Optional.empty(),
                        Optional.of(new TestReport(cases)), call.options().profile(), call.notes());
            });
        }
        List<TestSuite.IoCase> ioCases = ((TestSuite.IoCases) tests).cases();
        return ioCase(call, runner, sequence, ioCases, 0, new ArrayList<>(), new ArrayList<>());
    }

    /** The I/O cases one after the other (never all at once: a tenant's test suite takes one slot at a time). */
    private CompletionStage<ExecutorOutcome> ioCase(Call call, Runner runner, AtomicInteger sequence,
                                                   List<TestSuite.IoCase> cases, int index,
                                                   List<TestReport.CaseResult> results, List<Single> runs) {
        if (index == cases.size()) {
            Single shown = runs.get(runs.size() - 1);
            for (int i = 0; i < runs.size(); i++) {
                if (results.get(i).status() == TestReport.Status.FAIL) {
                    shown = runs.get(i);
                    break;
                }
            }
            List<AttemptRecord> attempts = runs.stream().flatMap(s -> s.attempts.stream()).toList();
            boolean allCached = runs.stream().allMatch(s -> s.cached);
            return CompletableFuture.completedFuture(new ExecutorOutcome(withNotes(shown.outcome, call.notes()),
                    allCached, attempts, Optional.empty(), Optional.of(new TestReport(results)), call.options().profile(),
                    call.notes()));
        }
        TestSuite.IoCase c = cases.get(index);
        ExecutionRequest request = withStdin(call.request(), c.stdin().getBytes(StandardCharsets.UTF_8));
        return single(call, request, runner, sequence).thenCompose(s -> {
            Optional<ExecutionResult> r = resultOf(s.outcome);
            boolean pass = r.isPresent() && r.get().succeeded() && TestReport.sameOutput(c.expectedStdout(), r.get().stdout());
            results.add(new TestReport.CaseResult(index + 1, c.stdin(), Optional.of(c.expectedStdout()),
                    r.map(ExecutionResult::stdout), pass ? TestReport.Status.PASS : TestReport.Status.FAIL,
                    verdictOf(s.outcome), r.map(ExecutionResult::exitCode).orElse(-1),
                    r.map(ExecutionResult::wallTimeMs).orElse(0L), Optional.of(s.outcome.executionKey())));
            runs.add(s);
            return ioCase(call, runner, sequence, cases, index + 1, results, runs);
        });
    }

    private static Optional<ExecutionResult> resultOf(ExecutionOutcome outcome) {
        return outcome instanceof ExecutionOutcome.Completed c ? Optional.of(c.result()) : Optional.empty();
    }

    private static Verdict verdictOf(ExecutionOutcome outcome) {
        return resultOf(outcome).map(ExecutionResult::verdict).orElse(Verdict.SANDBOX_ERROR);
    }

    private static ExecutionRequest withStdin(ExecutionRequest r, byte[] stdin) {
        return new ExecutionRequest(r.blocks(), r.limits(), r.environment(), stdin, r.files(), r.image());
    }

    private static ExecutionRequest withBlocks(ExecutionRequest r, List<CodeBlock> blocks) {
        return new ExecutionRequest(blocks, r.limits(), r.environment(), r.stdin(), r.files(), r.image());
    }

    /** The notes said in the result's message too, so that a reader of the result alone learns them. */
    private static ExecutionOutcome withNotes(ExecutionOutcome outcome, List<String> notes) {
        if (notes.isEmpty() || !(outcome instanceof ExecutionOutcome.Completed c)) {
            return outcome;
        }
        ExecutionResult r = c.result();
        String message = (r.message().isEmpty() ? "" : r.message() + "\n") + String.join("\n", notes);
        ExecutionResult noted = new ExecutionResult(r.verdict(), r.exitCode(), r.signal(), r.stdout(), r.stderr(),
                r.output(), r.stdoutTruncated(), r.stderrTruncated(), r.stdoutBytes(), r.stderrBytes(), r.wallTimeMs(),
                r.peakMemoryBytes(), r.filesWritten(), r.blocks(), message, r.backend(), r.ag2Reply());
        return new ExecutionOutcome.Completed(c.executionKey(), noted, c.attempts(), c.workspaceLost(), c.replayed());
    }

    // ---- statistics

    /**
     * Counts a run made without the executors around it (a plain request: no policy, retries, cache or tests), so that
     * the tenant's statistics hold every run; {@code options} gives its executor name and profile.
     */
    public CompletionStage<Void> recordPlain(Caller caller, String executionId, ExecutionRequest request,
                                             ExecutorOptions options, String source, ExecutionOutcome outcome) {
        Call call = new Call(caller, executionId, request, options, "", source, List.of());
        return recordRun(call, request, new Single(outcome, false, List.of()));
    }

    private CompletionStage<Void> recordRun(Call call, ExecutionRequest request, Single s) {
        Optional<ExecutionResult> r = resultOf(s.outcome);
        if (r.isEmpty() && !(s.outcome instanceof ExecutionOutcome.SandboxLost)) {
            return CompletableFuture.completedFuture(null); // nothing ran (overloaded, rejected, not found): nothing to count
        }
        return record(call, request, r.map(x -> x.verdict().name()).orElse(s.outcome.status().name()),
                r.map(ExecutionResult::succeeded).orElse(false), r.map(ExecutionResult::wallTimeMs).orElse(0L), false,
                s.attempts.size());
    }

    /** Counts one run; completes once the tenant's statistics have it (or could not take it: never a failure). */
    private CompletionStage<Void> record(Call call, ExecutionRequest request, String verdict, boolean success,
                                         long wallTimeMs, boolean cached, int attempts) {
        Limits l = request.limits();
        StatsSample sample = new StatsSample(call.options().executor().orElse(StatsSample.DEFAULT_EXECUTOR),
                call.options().profile().orElse(StatsSample.NO_PROFILE), verdict, success, wallTimeMs, l.memoryBytes(),
                l.cpus(), l.timeout().toMillis(), cached, attempts, call.source(), Instant.now());
        for (Consumer<StatsSample> listener : listeners) {
            try {
                listener.accept(sample);
            } catch (RuntimeException e) {
                log.warn("a statistics listener failed: {}", e.toString());
            }
        }
        // bookkeeping: a run never fails because its statistics could not be written
        return stats.record(call.statsTenant(), sample).exceptionally(e -> {
            log.warn("recording execution statistics failed: {}", e.toString());
            return null;
        });
    }
}
