package io.agentexec.gateway.grpc;

import com.google.protobuf.ByteString;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.executors.AttemptRecord;
import io.agentexec.cluster.executors.CodePolicy;
import io.agentexec.cluster.executors.ExecutorOptions;
import io.agentexec.cluster.executors.ExecutorOutcome;
import io.agentexec.cluster.executors.StatsReport;
import io.agentexec.cluster.executors.TestReport;
import io.agentexec.cluster.executors.TestSuite;
import io.agentexec.cluster.port.SandboxInfo;
import io.agentexec.gateway.executions.ExecutionEvent;
import io.agentexec.gateway.grpc.v1.Attempt;
import io.agentexec.gateway.grpc.v1.CreateSandboxRequest;
import io.agentexec.gateway.grpc.v1.ExecuteRequest;
import io.agentexec.gateway.grpc.v1.ExecutionResult;
import io.agentexec.gateway.grpc.v1.FileWritten;
import io.agentexec.gateway.grpc.v1.Language;
import io.agentexec.gateway.grpc.v1.LanguageList;
import io.agentexec.gateway.grpc.v1.OutputChunk;
import io.agentexec.gateway.grpc.v1.Sandbox;
import io.agentexec.gateway.grpc.v1.Stats;
import io.agentexec.gateway.grpc.v1.StatsSummary;
import io.agentexec.gateway.grpc.v1.TestCaseResult;
import io.agentexec.gateway.grpc.v1.Transcript;
import io.agentexec.gateway.http.Json;
import io.agentexec.gateway.service.RequestRules.ExecutionForm;
import io.agentexec.gateway.service.RequestRules.Limit;
import io.agentexec.gateway.service.RequestRules.SandboxForm;
import io.agentexec.gateway.service.RequestRules;
import io.agentexec.gateway.service.Sandboxes;
import io.agentexec.gateway.spi.ConversationService;
import java.nio.charset.StandardCharsets;
import java.util.Collection;

/**
 * The gRPC API's one mapping each way: proto requests straight into the service's forms (whose rules are HTTP's
 * too), the service's answers into proto messages.
 */
final class Protos {
    private Protos() {
    }

    // ---- proto to the service's forms (proto3 cannot tell "" or 0 from unset: either means "not given")

    static void read(ExecuteRequest in, ExecutionForm form) {
        if (!in.getSandboxId().isEmpty()) {
            form.sandbox(in.getSandboxId());
        }
        if (!in.getProfile().isEmpty()) {
            form.profile(in.getProfile());
        }
        if (in.hasLimits()) {
            read(in.getLimits(), form);
        }
        form.block(in.getLanguage(), in::getCode);
        if (!in.getStdin().isEmpty()) {
            form.stdin(in.getStdin().toStringUtf8());
        }
        in.getFilesList().forEach(f -> form.file(f.getPath(), f.getContent().toByteArray()));
        if (!in.getImage().isEmpty()) {
            form.image(in.getImage());
        }
        executors(in.getPolicy(), in.getPolicyPatternsList(), in.getRetries(),
                in.hasCache() ? java.util.Optional.of(in.getCache()) : java.util.Optional.empty(), in.getExecutor(), form);
        if (in.getTestsCount() > 0 && in.getAssertionsCount() > 0) {
            throw io.agentexec.gateway.service.ApiException.badRequest("give tests or assertions, not both");
        }
        if (in.getTestsCount() > 0) {
            form.ioTests(in.getTestsList().stream()
                    .map(t -> new TestSuite.IoCase(t.getStdin(), t.getExpectedStdout())).toList());
        }
        if (in.getAssertionsCount() > 0) {
            form.assertionTests(in.getAssertionsList());
        }
    }

    /** A run through the seed's executors: its result with what they add. */
    static ExecutionResult toProto(ExecutorOutcome o) {
        ExecutionOutcome.Completed c = (ExecutionOutcome.Completed) o.outcome();
        ExecutionResult.Builder b = toProto(c.result(), c.executionKey()).toBuilder().setCached(o.cached())
                .addAllNotes(o.notes()).setProfile(o.profile().orElse(""));
        for (AttemptRecord a : o.attempts()) {
            b.addAttempts(Attempt.newBuilder().setAttempt(a.attempt()).setExecutionId(a.executionId())
                    .setSuccess(a.success()).setOutcome(a.outcome()).setExitCode(a.exitCode())
                    .setWallTimeMs(a.wallTimeMs()).setMessage(a.message()));
        }
        o.tests().ifPresent(t -> {
            io.agentexec.gateway.grpc.v1.TestReport.Builder r = io.agentexec.gateway.grpc.v1.TestReport.newBuilder()
                    .setPassed(t.passed()).setFailed(t.failed());
            for (TestReport.CaseResult k : t.cases()) {
                r.addCases(TestCaseResult.newBuilder().setNumber(k.number()).setTest(k.test())
                        .setExpectedStdout(k.expectedStdout().orElse("")).setActualStdout(k.actualStdout().orElse(""))
                        .setStatus(k.status().name()).setVerdict(k.verdict().name()).setExitCode(k.exitCode())
                        .setWallTimeMs(k.wallTimeMs()).setExecutionId(k.executionId().orElse("")));
            }
            b.setTests(r);
        });
        return b.build();
    }

    static Stats toProto(StatsReport report) {
        Stats.Builder b = Stats.newBuilder().setSamples(report.samples()).setOverall(toProto(report.overall()));
        report.byExecutor().forEach((k, v) -> b.putByExecutor(k, toProto(v)));
        report.byProfile().forEach((k, v) -> b.putByProfile(k, toProto(v)));
        return b.build();
    }

    private static StatsSummary toProto(StatsReport.Summary s) {
        return StatsSummary.newBuilder().setCount(s.count()).setSuccesses(s.successes()).setSuccessRate(s.successRate())
                .setP50Ms(s.p50Ms()).setP95Ms(s.p95Ms()).setTimeouts(s.timeouts()).setCached(s.cached())
                .addAllMemoryLimitsBytes(s.memoryLimitsBytes()).addAllCpuLimits(s.cpuLimits())
                .addAllTimeoutLimitsMs(s.timeoutLimitsMs()).build();
    }

    static void read(CreateSandboxRequest in, SandboxForm form) {
        if (!in.getProfile().isEmpty()) {
            form.profile(in.getProfile());
        }
        form.language(in.getLanguage());
        if (in.hasLimits()) {
            read(in.getLimits(), form);
        }
        if (!in.getImage().isEmpty()) {
            form.image(in.getImage());
        }
        executors(in.getPolicy(), in.getPolicyPatternsList(), in.getRetries(),
                in.hasCache() ? java.util.Optional.of(in.getCache()) : java.util.Optional.empty(), in.getExecutor(), form);
    }

    /** The seed's executors' fields, the same in an execution and a sandbox (its runs' defaults). */
    private static void executors(String policy, java.util.List<String> patterns, int retries,
                                  java.util.Optional<Boolean> cache, String executor, RequestRules.Form form) {
        if (!policy.isEmpty() && !patterns.isEmpty()) {
            throw io.agentexec.gateway.service.ApiException.badRequest("give policy or policy_patterns, not both");
        }
        if (!policy.isEmpty()) {
            form.policy(policy);
        }
        if (!patterns.isEmpty()) {
            form.policyPatterns(patterns);
        }
        if (retries != 0) {
            form.retries(retries);
        }
        cache.ifPresent(form::cache);
        if (!executor.isEmpty()) {
            form.executor(executor);
        }
    }

    /** 0 is "the default"; negatives and NaN reach the form and are refused. */
    static void read(io.agentexec.gateway.grpc.v1.Limits l, RequestRules.Form form) {
        if (l.getTimeoutSeconds() != 0) {
            form.limit(Limit.TIMEOUT_SECONDS, l.getTimeoutSeconds(), Double.toString(l.getTimeoutSeconds()));
        }
        if (l.getMemoryMb() != 0) {
            form.limit(Limit.MEMORY_MB, l.getMemoryMb(), Long.toString(l.getMemoryMb()));
        }
        if (l.getCpus() != 0) {
            form.limit(Limit.CPUS, l.getCpus(), Double.toString(l.getCpus()));
        }
        if (l.getPids() != 0) {
            form.limit(Limit.PIDS, l.getPids(), Integer.toString(l.getPids()));
        }
        if (l.getOutputBytes() != 0) {
            form.limit(Limit.OUTPUT_BYTES, l.getOutputBytes(), Long.toString(l.getOutputBytes()));
        }
    }

    static ExecutionResult toProto(io.agentexec.sandbox.model.ExecutionResult r, String id) {
        ExecutionResult.Builder b = ExecutionResult.newBuilder()
                .setVerdict(r.verdict().name()).setExitCode(r.exitCode()).setSignal(r.signal().orElse(0))
                .setStdout(r.stdout()).setStderr(r.stderr()).setOutput(r.output())
                .setStdoutTruncated(r.stdoutTruncated()).setStderrTruncated(r.stderrTruncated())
                .setStdoutSize(r.stdoutBytes()).setStderrSize(r.stderrBytes()).setWallTimeMs(r.wallTimeMs())
                .setPeakMemoryBytes(r.peakMemoryBytes().orElse(0)).setMessage(r.message()).setBackend(r.backend())
                .setAg2Reply(r.ag2Reply()).setExecutionId(id);
        r.filesWritten().forEach(f -> b.addFilesWritten(FileWritten.newBuilder().setPath(f.path()).setSizeBytes(f.sizeBytes())));
        return b.build();
    }

    static Sandbox toProto(SandboxInfo info) {
        return Sandbox.newBuilder().setSandboxId(info.sandboxId()).setLanguage(info.language()).setStatus(info.status()).build();
    }

    static Sandbox toProto(Sandboxes.Described made) {
        ExecutorOptions d = made.defaults();
        io.agentexec.gateway.grpc.v1.ExecutorDefaults.Builder b = io.agentexec.gateway.grpc.v1.ExecutorDefaults.newBuilder();
        d.executor().ifPresent(b::setExecutor);
        d.profile().ifPresent(b::setProfile);
        d.policy().ifPresent(p -> {
            if (p.name().equals(CodePolicy.PATTERNS)) {
                p.rules().forEach(r -> b.addPolicyPatterns(r.pattern()));
            } else {
                b.setPolicy(p.name());
            }
        });
        d.retries().ifPresent(b::setRetries);
        d.cache().ifPresent(b::setCache);
        return toProto(made.info()).toBuilder().setDefaults(b).build();
    }

    static io.agentexec.gateway.grpc.v1.ConversationEvent toProto(ConversationService.ConversationEvent e) {
        return io.agentexec.gateway.grpc.v1.ConversationEvent.newBuilder().setConversationId(e.conversationId())
                .setSequence(e.sequence()).setType(e.type())
                .setJson(new String(Json.bytes(e.body()), StandardCharsets.UTF_8)).build();
    }

    static Transcript toProto(ConversationService.Transcript t) {
        Transcript.Builder b = Transcript.newBuilder().setConversationId(t.conversationId()).setStatus(t.status())
                .setWorkspace(t.workspace().orElse(""));
        t.events().forEach(e -> b.addEvents(toProto(e)));
        return b.build();
    }

    static io.agentexec.gateway.grpc.v1.ExecutionEvent toProto(ExecutionEvent.Output out) {
        return io.agentexec.gateway.grpc.v1.ExecutionEvent.newBuilder().setOutput(OutputChunk.newBuilder()
                .setStream(out.stream()).setData(ByteString.copyFromUtf8(out.text()))).build();
    }

    static LanguageList toProto(Collection<io.agentexec.sandbox.language.Language> languages) {
        LanguageList.Builder b = LanguageList.newBuilder();
        languages.forEach(l -> b.addLanguages(Language.newBuilder().setName(l.name()).addAllAliases(l.aliases()).setImage(l.image())));
        return b.build();
    }
}
