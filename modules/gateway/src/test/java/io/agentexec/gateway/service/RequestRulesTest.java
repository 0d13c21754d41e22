package io.agentexec.gateway.service;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.agentexec.gateway.GatewaySettings;
import io.agentexec.gateway.service.RequestRules.ExecutionForm;
import io.agentexec.gateway.service.RequestRules.ExecutionSpec;
import io.agentexec.gateway.service.RequestRules.Limit;
import io.agentexec.gateway.service.RequestRules.SandboxSpec;
import io.agentexec.gateway.tenant.TenantPolicy;
import io.agentexec.sandbox.EngineSettings;
import io.agentexec.sandbox.model.Limits;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;

/** The one set of request rules both transports read into, without a node: what a valid request is and what it becomes. */
class RequestRulesTest {
    private static final long MB = 1024L * 1024;
    private final Config config = ConfigFactory.load();
    private final GatewaySettings settings = GatewaySettings.fromConfig(config);
    private final EngineSettings engine = EngineSettings.fromConfig(config);
    private final RequestRules rules = new RequestRules(engine.languages(), engine.defaultLimits(),
            io.agentexec.cluster.executors.SeedExecutors.local(config));
    private final TenantPolicy policy = settings.tenantDefaults();
    private final Limits ceilings = policy.execution().ceilings();

    private static String refusal(Runnable step) {
        ApiException e = assertThrows(ApiException.class, step::run);
        assertEquals(400, e.status(), e.getMessage());
        assertEquals("invalid_request", e.code());
        return e.getMessage();
    }

    @Test
    void aRequestBecomesTheEnginesRecordsWithTheLanguagesCanonicalName() {
        ExecutionForm form = rules.execution(policy);
        form.sandbox("sbx-1");
        form.block("py", () -> "print(1)");
        form.stdin("in");
        form.file("data/a.txt", "x".getBytes(StandardCharsets.UTF_8));
        form.environment("A", "b");
        ExecutionSpec spec = form.build();
        assertEquals(Optional.of("sbx-1"), spec.sandboxId());
        assertEquals("python", spec.request().blocks().get(0).language());
        assertEquals("in", new String(spec.request().stdin(), StandardCharsets.UTF_8));
        assertEquals("data/a.txt", spec.request().files().get(0).path());
        assertEquals("b", spec.request().environment().get("A"));
        assertEquals(engine.defaultLimits(), spec.request().limits(), "nothing asked: the engine's defaults");
        assertTrue(spec.request().image().isEmpty());
    }

    @Test
    void limitsGoFromTheDefaultsThroughTheProfileToTheRequestAndStayUnderTheCeilings() {
        ExecutionForm form = rules.execution(policy);
        form.profile("datascience");
        form.limit(Limit.MEMORY_MB, 256, "256");
        form.block("python", () -> "1");
        ExecutionSpec spec = form.build();
        assertEquals(Duration.ofSeconds(120), spec.request().limits().timeout(), "the profile's timeout");
        assertEquals(256 * MB, spec.request().limits().memoryBytes(), "the request's memory over the profile's");
        assertEquals(Optional.of("agentexec/datascience:bookworm"), spec.request().image(), "the profile's image");

        ExecutionForm greedy = rules.execution(policy);
        greedy.limit(Limit.TIMEOUT_SECONDS, 1e300, "1e300");
        greedy.limit(Limit.MEMORY_MB, 1e12, "1e12");
        greedy.limit(Limit.CPUS, 64, "64");
        greedy.limit(Limit.PIDS, 1e9, "1e9");
        greedy.limit(Limit.OUTPUT_BYTES, 1e15, "1e15");
        greedy.block("python", () -> "1");
        Limits clamped = greedy.build().request().limits();
        assertEquals(ceilings.timeout(), clamped.timeout());
        assertEquals(ceilings.memoryBytes(), clamped.memoryBytes());
        assertEquals(ceilings.cpus(), clamped.cpus());
        assertEquals(ceilings.pids(), clamped.pids());
        assertEquals(ceilings.outputBytesPerStream(), clamped.outputBytesPerStream());
    }

    @Test
    void eachBadValueIsRefusedNamingTheField() {
        ExecutionForm form = rules.execution(policy);
        assertEquals("limits.timeoutSeconds must be positive; got -1", refusal(() -> form.limit(Limit.TIMEOUT_SECONDS, -1, "-1")));
        assertEquals("limits.cpus must be a finite number", refusal(() -> form.limit(Limit.CPUS, Double.NaN, "NaN")));
        assertEquals("limits.pids must be a whole number; got 1.5", refusal(() -> form.limit(Limit.PIDS, 1.5, "1.5")));
        assertTrue(refusal(() -> form.profile("gpu")).startsWith("profile: unknown profile 'gpu'; known: "));
        assertTrue(refusal(() -> form.sandbox("../x")).startsWith("a sandbox id is 1 to 128"));
        assertTrue(refusal(() -> form.file("../x", new byte[0])).contains("inside the workspace"));
        assertTrue(refusal(() -> form.file("/etc/passwd", new byte[0])).contains("relative to the workspace"));
        assertTrue(refusal(() -> form.block("bash -c id", () -> "x")).contains("language name"));
        form.block("python", () -> "1");
        form.image("ubuntu:latest");
        assertTrue(refusal(form::build).startsWith("image 'ubuntu:latest' is not allowed; allowed: "));
    }

    @Test
    void theFirstProblemIsTheOneReported() {
        AtomicBoolean codeRead = new AtomicBoolean();
        String message = refusal(() -> rules.execution(policy).block("cobol", () -> {
            codeRead.set(true);
            throw ApiException.badRequest("'code' is required");
        }));
        assertTrue(message.startsWith("unknown language 'cobol'"), message);
        assertFalse(codeRead.get(), "the code is not read for a language that is refused");
    }

    @Test
    void aSandboxNeedsALanguageAndTakesTheSameLimitsAndImages() {
        RequestRules.SandboxForm form = rules.sandbox(policy);
        assertEquals("'language' is required", refusal(form::build));
        form.language("sh");
        form.limit(Limit.TIMEOUT_SECONDS, 10, "10");
        SandboxSpec spec = form.build();
        assertEquals("bash", spec.language());
        assertEquals(Duration.ofSeconds(10), spec.limits().timeout());
        assertEquals(Optional.empty(), spec.image());
        assertEquals("bash", spec.toCluster().language());
    }

    @Test
    void theSeedsProfilesAreOneTableHeldUnderTheCeilingsWithANote() {
        ExecutionForm simple = rules.execution(policy);
        simple.profile("simple");
        simple.block("python", () -> "1");
        ExecutionSpec s = simple.build();
        assertEquals(256 * MB, s.request().limits().memoryBytes());
        assertEquals(0.5, s.request().limits().cpus(), 1e-9);
        assertEquals(Duration.ofSeconds(30), s.request().limits().timeout());
        assertEquals(Optional.of("simple"), s.options().profile(), "counted by profile");
        assertTrue(s.notes().isEmpty(), "nothing held: " + s.notes());
        assertFalse(s.needsExecutors(), "a profile alone is a plain run");

        ExecutionForm complex = rules.execution(policy);
        complex.profile("complex");
        complex.block("python", () -> "1");
        ExecutionSpec c = complex.build();
        assertEquals(ceilings.timeout(), c.request().limits().timeout(), "600 s held at the ceiling");
        assertEquals(1, c.notes().size(), c.notes().toString());
        assertTrue(c.notes().get(0).contains("profile complex") && c.notes().get(0).contains("timeout"), c.notes().get(0));
    }

    @Test
    void executorOptionsAreCheckedByTheFormNamingTheField() {
        ExecutionForm form = rules.execution(policy);
        form.block("python", () -> "1");
        form.policy("secure");
        form.retries(3);
        form.cache(true);
        form.ioTests(java.util.List.of(new io.agentexec.cluster.executors.TestSuite.IoCase("1", "2")));
        ExecutionSpec spec = form.build();
        assertTrue(spec.needsExecutors());
        assertEquals("secure", spec.options().policy().orElseThrow().name());
        assertEquals(3, spec.options().attempts());
        assertTrue(spec.options().caching());

        assertTrue(refusal(() -> rules.execution(policy).policy("paranoid")).contains("unknown policy 'paranoid'"));
        assertTrue(refusal(() -> rules.execution(policy).retries(0)).contains("retries"));
        assertTrue(refusal(() -> rules.execution(policy).retries(1000)).contains("max-retries"));
        assertTrue(refusal(() -> rules.execution(policy).policyPatterns(java.util.List.of(""))).contains("policy"));
        assertTrue(refusal(() -> rules.execution(policy).assertionTests(java.util.List.of())).contains("tests"));
        assertTrue(refusal(() -> rules.execution(policy).executor("../x")).contains("executor"));
    }
}
