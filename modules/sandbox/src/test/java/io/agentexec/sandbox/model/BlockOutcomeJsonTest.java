package io.agentexec.sandbox.model;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;

/**
 * BlockOutcome is journalled by the cluster and sent as JSON: a result written before {@code start} existed must
 * still read (Jackson gives a missing record component null), as a plain start; a new one round-trips.
 */
class BlockOutcomeJsonTest {
    private final ObjectMapper json = new ObjectMapper();

    @Test
    void anOutcomeWrittenBeforeStartExistedReadsAsAPlainStart() throws Exception {
        BlockOutcome old = json.readValue("{\"index\":0,\"language\":\"python\",\"verdict\":\"OK\",\"exitCode\":0,"
                + "\"wallTimeMs\":5}", BlockOutcome.class);
        assertEquals(new BlockOutcome(0, "python", Verdict.OK, 0, 5, BlockOutcome.EXEC), old);
    }

    @Test
    void startRoundTrips() throws Exception {
        BlockOutcome b = new BlockOutcome(1, "python", Verdict.RUNTIME_ERROR, 1, 7, BlockOutcome.ZYGOTE);
        String text = json.writeValueAsString(b);
        assertEquals(true, text.contains("\"start\":\"zygote\""), text);
        assertEquals(b, json.readValue(text, BlockOutcome.class));
    }
}
