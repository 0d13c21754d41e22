package io.agentexec.agents;

import io.agentexec.agents.entity.ExecutionPipeline;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The seed's TestingExecutor: the code, then test cases that each append a boolean to
 * {@code test_results}, then one {@code Test N: PASS|FAIL} line per case. A case that never ran
 * (the code raised first) is a FAIL too.
 */
public record TestReport(List<TestOutcome> tests, ExecutionPipeline.Outcome execution) {
    public enum Status { PASS, FAIL }

    public record TestOutcome(int number, String testCase, Status status) {
    }

    private static final Pattern LINE = Pattern.compile("^Test (\\d+): (PASS|FAIL)$", Pattern.MULTILINE);

    public TestReport {
        tests = List.copyOf(tests);
        Objects.requireNonNull(execution, "execution");
    }

    public boolean allPassed() {
        return !tests.isEmpty() && tests.stream().allMatch(t -> t.status() == Status.PASS);
    }

    static TestReport run(UserProxyAgent agent, String code, List<String> testCases) {
        if (testCases.isEmpty()) {
            throw new AgentConfigException("test_cases must not be empty");
        }
        String program = code + "\n\n# Test execution\ntest_results = []\n" + String.join("\n", testCases) + "\n\n"
                + "for i, result in enumerate(test_results):\n"
                + "    print(f\"Test {i+1}: {'PASS' if result else 'FAIL'}\")\n";
        ExecutionPipeline.Outcome outcome = agent.executeCode("python", program);
        return new TestReport(parse(outcome.record().output(), testCases), outcome);
    }

    static List<TestOutcome> parse(String output, List<String> testCases) {
        Status[] statuses = new Status[testCases.size()];
        Matcher m = LINE.matcher(output);
        while (m.find()) {
            int n = Integer.parseInt(m.group(1));
            if (n >= 1 && n <= statuses.length) {
                statuses[n - 1] = Status.valueOf(m.group(2));
            }
        }
        List<TestOutcome> outcomes = new ArrayList<>();
        for (int i = 0; i < statuses.length; i++) {
            outcomes.add(new TestOutcome(i + 1, testCases.get(i), statuses[i] == null ? Status.FAIL : statuses[i]));
        }
        return outcomes;
    }
}
