package io.agentexec.gateway.http;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.datatype.jdk8.Jdk8Module;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.executors.AttemptRecord;
import io.agentexec.cluster.executors.CodePolicy;
import io.agentexec.cluster.executors.ExecutorOptions;
import io.agentexec.cluster.executors.ExecutorOutcome;
import io.agentexec.cluster.executors.StatsReport;
import io.agentexec.cluster.executors.TestReport;
import io.agentexec.cluster.port.SandboxInfo;
import io.agentexec.gateway.executions.ExecutionEvent;
import io.agentexec.gateway.service.ApiException;
import io.agentexec.gateway.service.Executions;
import io.agentexec.gateway.service.Outcomes;
import io.agentexec.gateway.spi.ConversationService;
import io.agentexec.sandbox.model.ExecutionResult;
import java.util.Optional;

/** The HTTP API's JSON: one mapper, and the shapes of the documents it answers (results, errors, executions, sandboxes, conversations). */
public final class Json {
    public static final ObjectMapper MAPPER = new ObjectMapper().registerModule(new Jdk8Module())
            .enable(DeserializationFeature.FAIL_ON_READING_DUP_TREE_KEY)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    private Json() {
    }

    /** The engine's result as the API returns it (Judge0 / Piston style), with the execution's id. */
    public static ObjectNode result(ExecutionResult result, String executionId) {
        ObjectNode node = MAPPER.createObjectNode();
        node.put("id", executionId);
        node.setAll((ObjectNode) MAPPER.valueToTree(result));
        return node;
    }

    /**
     * A run through the seed's executors: its result document with {@code cached}, the {@code attempts}
     * (RobustCodeExecutor's history), the {@code tests} report, the policy {@code violation}, the {@code profile} and
     * its {@code notes}.
     */
    public static ObjectNode executorOutcome(ExecutorOutcome o) {
        ExecutionOutcome.Completed c = (ExecutionOutcome.Completed) o.outcome();
        ObjectNode body = completed(c, c.executionKey());
        body.put("cached", o.cached());
        o.profile().ifPresent(p -> body.put("profile", p));
        var notes = body.putArray("notes");
        o.notes().forEach(notes::add);
        var attempts = body.putArray("attempts");
        for (AttemptRecord a : o.attempts()) {
            ObjectNode n = attempts.addObject();
            n.put("attempt", a.attempt());
            n.put("executionId", a.executionId());
            n.put("success", a.success());
            n.put("outcome", a.outcome());
            n.put("exitCode", a.exitCode());
            n.put("wallTimeMs", a.wallTimeMs());
            n.put("message", a.message());
            n.put("at", a.at().toString());
        }
        o.violation().ifPresent(v -> {
            ObjectNode n = body.putObject("violation");
            n.put("policy", v.policy());
            n.put("kind", v.rule().kind().name());
            n.put("pattern", v.rule().pattern());
            n.put("message", v.message());
        });
        o.tests().ifPresent(t -> {
            ObjectNode n = body.putObject("tests");
            n.put("passed", t.passed());
            n.put("failed", t.failed());
            n.put("allPassed", t.allPassed());
            n.put("summary", t.summary());
            var cases = n.putArray("cases");
            for (TestReport.CaseResult r : t.cases()) {
                ObjectNode k = cases.addObject();
                k.put("number", r.number());
                k.put("test", r.test());
                r.expectedStdout().ifPresent(e -> k.put("expectedStdout", e));
                r.actualStdout().ifPresent(e -> k.put("actualStdout", e));
                k.put("status", r.status().name());
                k.put("verdict", r.verdict().name());
                k.put("exitCode", r.exitCode());
                k.put("wallTimeMs", r.wallTimeMs());
                r.executionId().ifPresent(e -> k.put("executionId", e));
            }
        });
        return body;
    }

    /** The seed's execution_stats of a tenant: overall, by executor name and by profile. */
    public static ObjectNode stats(StatsReport report) {
        ObjectNode body = MAPPER.createObjectNode();
        body.put("samples", report.samples());
        body.set("overall", summary(report.overall()));
        ObjectNode byExecutor = body.putObject("byExecutor");
        report.byExecutor().forEach((k, v) -> byExecutor.set(k, summary(v)));
        ObjectNode byProfile = body.putObject("byProfile");
        report.byProfile().forEach((k, v) -> byProfile.set(k, summary(v)));
        return body;
    }

    private static ObjectNode summary(StatsReport.Summary s) {
        ObjectNode n = MAPPER.createObjectNode();
        n.put("count", s.count());
        n.put("successes", s.successes());
        n.put("successRate", s.successRate());
        n.put("p50Ms", s.p50Ms());
        n.put("p95Ms", s.p95Ms());
        n.put("timeouts", s.timeouts());
        n.put("cached", s.cached());
        var mem = n.putArray("memoryLimitsBytes");
        s.memoryLimitsBytes().forEach(mem::add);
        var cpus = n.putArray("cpuLimits");
        s.cpuLimits().forEach(cpus::add);
        var timeouts = n.putArray("timeoutLimitsMs");
        s.timeoutLimitsMs().forEach(timeouts::add);
        return n;
    }

    public static ObjectNode error(String code, String message, String requestId) {
        ObjectNode node = MAPPER.createObjectNode();
        ObjectNode error = node.putObject("error");
        error.put("code", code);
        error.put("message", message);
        error.put("requestId", requestId);
        return node;
    }

    /** A completed run's result document (with a note when its sandbox's earlier workspace was lost). */
    public static ObjectNode completed(ExecutionOutcome.Completed completed, String executionId) {
        ObjectNode body = result(completed.result(), executionId);
        completed.note().ifPresent(note -> body.put("note", note));
        return body;
    }

    /** A run's outcome as its result document, or as the error document of one without a result. */
    public static ObjectNode outcome(ExecutionOutcome outcome, String executionId) {
        if (Outcomes.hasResult(outcome)) {
            return completed((ExecutionOutcome.Completed) outcome, executionId);
        }
        ApiException e = Outcomes.asError(outcome);
        return error(e.code(), e.getMessage(), executionId);
    }

    /** An execution found by id: running, completed with its result, or cancelled / failed with its error. */
    public static ObjectNode execution(Executions.Found found, String requestId) {
        ObjectNode body = MAPPER.createObjectNode();
        body.put("id", found.id());
        found.startedAt().ifPresent(t -> body.put("startedAt", t.toString()));
        Optional<ExecutionOutcome> outcome = found.outcome();
        if (outcome.isEmpty()) {
            body.put("status", "running");
        } else if (Outcomes.hasResult(outcome.get())) {
            body.put("status", "completed");
            body.set("result", completed((ExecutionOutcome.Completed) outcome.get(), found.id()));
        } else {
            ApiException e = Outcomes.asError(outcome.get());
            body.put("status", outcome.get().cancelled() ? "cancelled" : "failed");
            body.set("error", error(e.code(), e.getMessage(), requestId).get("error"));
        }
        return body;
    }

    /** A chunk of a running execution's output (an SSE {@code output} event). */
    public static ObjectNode output(ExecutionEvent.Output out) {
        ObjectNode data = MAPPER.createObjectNode();
        data.put("stream", out.stream());
        data.put("text", out.text());
        return data;
    }

    public static ObjectNode sandbox(SandboxInfo info) {
        ObjectNode body = MAPPER.createObjectNode();
        body.put("id", info.sandboxId());
        body.put("language", info.language());
        body.put("status", info.status());
        return body;
    }

    /** A sandbox with the executor options its runs default to ({@code defaults}: only the fields said at creation). */
    public static ObjectNode sandbox(SandboxInfo info, ExecutorOptions defaults) {
        ObjectNode body = sandbox(info);
        ObjectNode d = body.putObject("defaults");
        defaults.executor().ifPresent(v -> d.put("executor", v));
        defaults.profile().ifPresent(v -> d.put("profile", v));
        defaults.policy().ifPresent(p -> {
            if (p.name().equals(CodePolicy.PATTERNS)) {
                ArrayNode patterns = d.putArray("policy");
                p.rules().forEach(r -> patterns.add(r.pattern()));
            } else {
                d.put("policy", p.name());
            }
        });
        defaults.retries().ifPresent(v -> d.put("retries", v));
        defaults.cache().ifPresent(v -> d.put("cache", v));
        return body;
    }

    public static ObjectNode conversationEvent(ConversationService.ConversationEvent e) {
        ObjectNode node = MAPPER.createObjectNode();
        node.put("sequence", e.sequence());
        node.put("type", e.type());
        node.set("body", e.body());
        return node;
    }

    public static ObjectNode transcript(ConversationService.Transcript t) {
        ObjectNode node = MAPPER.createObjectNode();
        node.put("id", t.conversationId());
        node.put("status", t.status());
        t.workspace().ifPresent(w -> node.put("workspace", w));
        var events = node.putArray("events");
        t.events().forEach(e -> events.add(conversationEvent(e)));
        return node;
    }

    public static byte[] bytes(Object value) {
        try {
            return MAPPER.writeValueAsBytes(value);
        } catch (JsonProcessingException e) {
            throw new IllegalStateException("cannot write JSON", e);
        }
    }
}
