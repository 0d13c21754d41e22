package io.agentexec.cluster.executors;

import io.agentexec.cluster.api.ExecutionOutcome;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * What a run through the seed's executors ends with: the execution port's outcome (for a cached answer, a Completed
 * one with the seed's {@code [CACHED RESULT]} prefix on {@code output} and {@code ag2Reply}), and what the executors
 * add to it.
 *
 * @param outcome   the last run's outcome (with tests: the first failing case's, else the last case's)
 * @param cached    answered from the cache: nothing ran
 * @param attempts  the attempts made, in order (RobustCodeExecutor's history); empty when cached or refused
 * @param violation the code-policy rule the code broke (then nothing ran)
 * @param tests     the per-case report (TestingExecutor)
 * @param profile   the profile it ran under
 * @param notes     what the caller should know beside the result (a profile's value held at a ceiling)
 */
public record ExecutorOutcome(ExecutionOutcome outcome, boolean cached, List<AttemptRecord> attempts,
                              Optional<CodePolicy.Violation> violation, Optional<TestReport> tests,
                              Optional<String> profile, List<String> notes) {
    public ExecutorOutcome {
        Objects.requireNonNull(outcome, "outcome");
        attempts = List.copyOf(attempts);
        Objects.requireNonNull(violation, "violation");
        Objects.requireNonNull(tests, "tests");
        Objects.requireNonNull(profile, "profile");
        notes = List.copyOf(notes);
    }
}
