package io.agentexec.cluster.port;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.typesafe.config.ConfigFactory;
import io.agentexec.cluster.port.quota.TenantSandboxes;
import java.util.Map;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializer;
import org.apache.pekko.serialization.SerializerWithStringManifest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The tenants' quota entity moved from the gateway module into the execution port: events and snapshots a journal
 * holds under their old class names still read as today's classes (Pekko's Jackson migration renames them).
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class QuotaJournalCompatibilityTest {
    private static final String OLD = "io.agentexec.gateway.cluster.TenantSandboxes$";
    private ActorSystem<Void> system;

    @BeforeAll
    void start() {
        system = ActorSystem.create(Behaviors.empty(), "quota-compat",
                ConfigFactory.parseString("pekko.actor.provider = local").withFallback(ConfigFactory.load()));
    }

    @AfterAll
    void stop() {
        system.terminate();
    }

    private Object readAsOld(Object written, String oldName) throws Exception {
        Serialization serialization = SerializationExtension.get(system);
        Serializer serializer = serialization.findSerializerFor(written);
        byte[] bytes = serializer.toBinary(written);
        // what the journal held before the move: the same bytes under the old class name
        return ((SerializerWithStringManifest) serializer).fromBinary(bytes, OLD + oldName);
    }

    @Test
    void eventsAndSnapshotsWrittenUnderTheGatewaysClassNamesStillRead() throws Exception {
        TenantSandboxes.Reserved reserved = new TenantSandboxes.Reserved("sbx-1", 1_700_000_000_000L);
        assertEquals(reserved, readAsOld(reserved, "Reserved"));
        TenantSandboxes.Released released = new TenantSandboxes.Released("sbx-1", "deleted");
        assertEquals(released, readAsOld(released, "Released"));
        TenantSandboxes.State state = new TenantSandboxes.State(Map.of("sbx-1", 1L, "sbx-2", 2L));
        assertEquals(state, readAsOld(state, "State"));
    }
}
