package io.agentexec.agents;

import io.agentexec.agents.entity.ExecutionPipeline;
import io.agentexec.cluster.executors.TestReport;
import java.util.Objects;

/**
 * The seed's TestingExecutor's answer: the per-case report and the execution behind it (with I/O cases, the first
 * failing case's run, else the last one's).
 */
public record TestRun(TestReport report, ExecutionPipeline.Outcome execution) {
    public TestRun {
        Objects.requireNonNull(report, "report");
        Objects.requireNonNull(execution, "execution");
    }

    public boolean allPassed() {
        return report.allPassed();
    }
}
