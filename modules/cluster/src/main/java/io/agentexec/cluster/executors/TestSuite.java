package io.agentexec.cluster.executors;

import io.agentexec.sandbox.model.InvalidRequestException;
import java.util.List;
import java.util.Objects;

/**
 * What a run is tested against: the seed's TestingExecutor, in two styles.
 * <ul>
 *   <li>{@link IoCases}: Judge0's {@code stdin} / {@code expected_output}: the code runs once per case with the case's
 *       stdin, and passes when it ends OK and its stdout is the expected one (trailing whitespace of each line and
 *       trailing blank lines aside, as Judge0 compares);</li>
 *   <li>{@link Assertions}: the seed's own {@code run_tests(code, test_cases)}: Python lines that each append a
 *       boolean to {@code test_results}, run once after the code, with one {@code Test N: PASS|FAIL} line each.</li>
 * </ul>
 */
@com.fasterxml.jackson.annotation.JsonTypeInfo(use = com.fasterxml.jackson.annotation.JsonTypeInfo.Id.NAME, property = "style")
@com.fasterxml.jackson.annotation.JsonSubTypes({
        @com.fasterxml.jackson.annotation.JsonSubTypes.Type(value = TestSuite.IoCases.class, name = "io"),
        @com.fasterxml.jackson.annotation.JsonSubTypes.Type(value = TestSuite.Assertions.class, name = "assertions")})
public sealed interface TestSuite permits TestSuite.IoCases, TestSuite.Assertions {

    /** How many cases. */
    @com.fasterxml.jackson.annotation.JsonIgnore
    int size();

    /** One case: what the code reads on stdin and what it must print. */
    record IoCase(String stdin, String expectedStdout) {
        public IoCase {
            Objects.requireNonNull(stdin, "stdin");
            Objects.requireNonNull(expectedStdout, "expectedStdout");
        }
    }

    record IoCases(List<IoCase> cases) implements TestSuite {
        public IoCases {
            cases = List.copyOf(cases);
            if (cases.isEmpty()) {
                throw new InvalidRequestException("tests: give at least one case");
            }
        }

        @Override
        public int size() {
            return cases.size();
        }
    }

    /** The seed's style: Python statements appending booleans to {@code test_results}. */
    record Assertions(List<String> cases) implements TestSuite {
        public Assertions {
            cases = List.copyOf(cases);
            if (cases.isEmpty()) {
                throw new InvalidRequestException("tests: give at least one assertion");
            }
            for (String c : cases) {
                if (c.isBlank()) {
                    throw new InvalidRequestException("tests: an assertion must not be blank");
                }
            }
        }

        @Override
        public int size() {
            return cases.size();
        }
    }
}
