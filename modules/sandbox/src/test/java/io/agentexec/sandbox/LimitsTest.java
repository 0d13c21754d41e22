package io.agentexec.sandbox;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.InvalidRequestException;
import io.agentexec.sandbox.model.Limits;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class LimitsTest {
    private static final Limits OK = new Limits(Duration.ofSeconds(5), 64L << 20, 1, 16, 1024, 16L << 20);

    @Test
    void sizesParseLikeDockers() {
        assertEquals(512L * 1024 * 1024, Limits.parseBytes("512m"));
        assertEquals(1L << 30, Limits.parseBytes("1g"));
        assertEquals(1L << 30, Limits.parseBytes("1G"));
        assertEquals(65536, Limits.parseBytes("64k"));
        assertEquals(100, Limits.parseBytes("100"));
        assertEquals(100, Limits.parseBytes("100b"));
    }

    @Test
    void malformedSizesAreRefused() {
        for (String bad : List.of("", "m", "-1m", "1.5g", "lots", "99999999999999999g")) {
            assertThrows(InvalidRequestException.class, () -> Limits.parseBytes(bad), bad);
        }
    }

    @Test
    void everyLimitIsCheckedAndTheErrorNamesIt() {
        assertTrue(assertThrows(InvalidRequestException.class, () -> OK.withTimeout(Duration.ZERO)).getMessage().contains("timeout"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> OK.withTimeout(Duration.ofSeconds(-1))).getMessage().contains("timeout"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> OK.withTimeout(Duration.ofDays(2))).getMessage().contains("timeout"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> OK.withMemoryBytes(1024)).getMessage().contains("memory"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> OK.withCpus(0)).getMessage().contains("cpus"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> OK.withCpus(Double.NaN)).getMessage().contains("cpus"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> OK.withCpus(Double.POSITIVE_INFINITY)).getMessage().contains("cpus"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> OK.withPids(0)).getMessage().contains("pids"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> OK.withOutputBytesPerStream(0)).getMessage().contains("outputBytes"));
        assertTrue(assertThrows(InvalidRequestException.class, () -> OK.withWorkspaceBytes(10)).getMessage().contains("workspace"));
    }

    @Test
    void requestsRefuseEmptyWorkAndBadEnvironmentNames() {
        assertThrows(InvalidRequestException.class, () -> new ExecutionRequest(List.of(), OK, Map.of(), new byte[0], List.of(), Optional.empty()));
        assertTrue(assertThrows(InvalidRequestException.class, () -> ExecutionRequest.builder(OK).block("python", "1").env("A=B", "x").build())
                .getMessage().contains("A=B"));
        assertThrows(InvalidRequestException.class, () -> ExecutionRequest.builder(OK).block("python", "1").env("", "x").build());
        assertThrows(InvalidRequestException.class, () -> ExecutionRequest.builder(OK).block("python", "1").env("A", "x\0y").build());
    }

    @Test
    void requestsAreImmutable() {
        byte[] stdin = {1, 2, 3};
        ExecutionRequest r = ExecutionRequest.builder(OK).block("python", "1").stdin(stdin).build();
        stdin[0] = 9;
        r.stdin()[1] = 9;
        assertEquals(1, r.stdin()[0]);
        assertEquals(2, r.stdin()[1]);
    }
}
