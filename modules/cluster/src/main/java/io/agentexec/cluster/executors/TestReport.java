package io.agentexec.cluster.executors;

import io.agentexec.sandbox.model.Verdict;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Per case PASS or FAIL, as the seed's TestingExecutor prints them ({@code Test N: PASS}) and Judge0 judges them. */
public record TestReport(List<CaseResult> cases) {

    public enum Status { PASS, FAIL }

    /**
     * One case's outcome.
     *
     * @param test           the case: its stdin (I/O style) or the assertion (the seed's style)
     * @param expectedStdout what it had to print (I/O style)
     * @param actualStdout   what it printed (I/O style)
     * @param verdict        the run's verdict (the one run of the assertion style, for every assertion)
     * @param executionId    the run's id, where it has one of its own
     */
    public record CaseResult(int number, String test, Optional<String> expectedStdout, Optional<String> actualStdout,
                             Status status, Verdict verdict, int exitCode, long wallTimeMs,
                             Optional<String> executionId) {
        public CaseResult {
            Objects.requireNonNull(test, "test");
            Objects.requireNonNull(expectedStdout, "expectedStdout");
            Objects.requireNonNull(actualStdout, "actualStdout");
            Objects.requireNonNull(status, "status");
            Objects.requireNonNull(verdict, "verdict");
            Objects.requireNonNull(executionId, "executionId");
        }
    }

    private static final Pattern LINE = Pattern.compile("^Test (\\d+): (PASS|FAIL)$", Pattern.MULTILINE);

    public TestReport {
        cases = List.copyOf(cases);
    }

    public long passed() {
        return cases.stream().filter(c -> c.status() == Status.PASS).count();
    }

    public long failed() {
        return cases.size() - passed();
    }

    public boolean allPassed() {
        return !cases.isEmpty() && failed() == 0;
    }

    /** The seed's lines: {@code Test 1: PASS} ... */
    public String summary() {
        StringBuilder s = new StringBuilder();
        cases.forEach(c -> s.append("Test ").append(c.number()).append(": ").append(c.status()).append('\n'));
        return s.toString();
    }

    /**
     * Judge0's comparison: equal once trailing whitespace is taken off every line and trailing empty lines are
     * dropped (a missing final newline is no failure; different words, order or leading spaces are).
     */
    public static boolean sameOutput(String expected, String actual) {
        return normalise(expected).equals(normalise(actual));
    }

    private static String normalise(String text) {
        String[] lines = text.replace("\r\n", "\n").split("\n", -1);
        List<String> kept = new ArrayList<>();
        for (String line : lines) {
            kept.add(line.stripTrailing());
        }
        while (!kept.isEmpty() && kept.get(kept.size() - 1).isEmpty()) {
            kept.remove(kept.size() - 1);
        }
        return String.join("\n", kept);
    }

    /** The seed's program: the code, then {@code test_results = []}, the cases, and one line per result. */
    public static String assertionProgram(String code, List<String> cases) {
        return code + "\n\n# Test execution\ntest_results = []\n" + String.join("\n", cases) + "\n\n"
                + "for i, result in enumerate(test_results):\n"
                + "    print(f\"Test {i+1}: {'PASS' if result else 'FAIL'}\")\n";
    }

    /** The seed's lines read back; a case with no line (the code raised before it) is a FAIL. */
    public static List<Status> parseAssertions(String output, int count) {
        Status[] statuses = new Status[count];
        Matcher m = LINE.matcher(output);
        while (m.find()) {
            int n = Integer.parseInt(m.group(1));
            if (n >= 1 && n <= count) {
                statuses[n - 1] = Status.valueOf(m.group(2));
            }
        }
        List<Status> out = new ArrayList<>();
        for (Status s : statuses) {
            out.add(s == null ? Status.FAIL : s);
        }
        return out;
    }
}
