package io.agentexec.cluster;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import io.agentexec.cluster.ClusterSettings.Formation;
import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.CancelReply;
import io.agentexec.cluster.api.ExecutionReply;
import io.agentexec.cluster.api.FileReply;
import io.agentexec.cluster.api.OutputChunk;
import io.agentexec.cluster.api.SandboxFileException;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.worker.ExecutionWorker;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.sandbox.docker.DockerOptions;
import io.agentexec.cluster.execution.ExecutionEntity;
import io.agentexec.cluster.persistence.Dialect;
import io.agentexec.cluster.sandbox.SandboxEntity;
import io.agentexec.sandbox.model.BlockOutcome;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.FileWritten;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.Verdict;
import io.agentexec.sandbox.model.WorkspaceFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.OptionalLong;
import org.apache.pekko.actor.typed.ActorSystem;
import org.apache.pekko.actor.typed.javadsl.Adapter;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.serialization.Serialization;
import org.apache.pekko.serialization.SerializationExtension;
import org.apache.pekko.serialization.Serializer;
import org.junit.jupiter.api.Test;

/** Configuration layering and errors, and the Jackson round trip of what crosses nodes or reaches the journal. */
class SettingsAndSerializationTest {
    private static final Path CONFIG = Path.of("../../config");

    @Test
    void localConfigIsOneNodeWithBothRolesOnH2() {
        ClusterSettings s = ClusterSettings.fromConfig(ClusterConfig.load(List.of(CONFIG.resolve("local.conf"))));
        assertEquals(java.util.Set.of(NodeRole.GATEWAY, NodeRole.WORKER), s.roles());
        assertEquals(Dialect.H2, s.persistence().dialect());
        assertTrue(s.persistence().url().contains("./data/"));
        assertTrue(s.seedNodes().isEmpty());
    }

    /** The database password has no default in the product configuration: it comes from AGENTEXEC_DB_PASSWORD. */
    private static final String DB_PASSWORD = "agentexec.cluster.persistence.password = \"from-the-environment\"\n";

    @Test
    void clusterConfigUsesPostgresAndSeedNodes() {
        Config config = ClusterConfig.load(DB_PASSWORD, List.of(CONFIG.resolve("cluster.conf")));
        ClusterSettings s = ClusterSettings.fromConfig(config);
        assertEquals(Dialect.POSTGRESQL, s.persistence().dialect());
        assertEquals(2, s.seedNodes().size());
        Config effective = AgentexecCluster.effectiveConfig(config, s);
        assertEquals("slick.jdbc.PostgresProfile$", effective.getString("pekko-persistence-jdbc.shared-databases.slick.profile"));
        assertEquals(s.seedNodes(), effective.getStringList("pekko.cluster.seed-nodes"));
        assertEquals("agentexec", effective.getString("pekko-persistence-jdbc.shared-databases.slick.db.user"));
        assertEquals("jdbc:postgresql://127.0.0.1:5432/agentexec",
                effective.getString("pekko-persistence-jdbc.shared-databases.slick.db.url"));
        assertEquals("org.apache.pekko.cluster.sbr.SplitBrainResolverProvider",
                effective.getString("pekko.cluster.downing-provider-class"));
        assertTrue(effective.getStringList("pekko.cluster.roles").containsAll(List.of("gateway", "worker")));
    }

    @Test
    void kubernetesConfigBootstrapsThroughTheKubernetesApi() {
        Config config = ClusterConfig.load(DB_PASSWORD, List.of(CONFIG.resolve("cluster.conf"), CONFIG.resolve("kubernetes.conf")));
        assertEquals(Formation.KUBERNETES_BOOTSTRAP, ClusterSettings.fromConfig(config).formation());
        assertEquals("kubernetes-api",
                config.getString("pekko.management.cluster.bootstrap.contact-point-discovery.discovery-method"));
        assertTrue(config.getStringList("pekko.cluster.seed-nodes").isEmpty());
    }

    /**
     * On Kubernetes the management endpoint (bootstrap, probes) binds to the pod's address, never to every
     * interface; the nodes talk mutual TLS (cluster.conf), the single local node plain TCP on loopback.
     */
    @Test
    void kubernetesBindsManagementToThePodAddressAndClustersTalkTls() {
        Config config = ClusterConfig.load(DB_PASSWORD + "AGENTEXEC_POD_IP = \"10.1.2.3\"\n",
                List.of(CONFIG.resolve("cluster.conf"), CONFIG.resolve("kubernetes.conf")));
        assertEquals("10.1.2.3", config.getString("pekko.management.http.bind-hostname"));
        assertEquals("10.1.2.3", config.getString("pekko.management.http.hostname"));
        assertEquals("10.1.2.3", config.getString("pekko.remote.artery.canonical.hostname"));
        assertTrue(config.getBoolean("pekko.management.http.route-providers-read-only"));
        ClusterSettings s = ClusterSettings.fromConfig(config);
        assertTrue(config.getBoolean("agentexec.cluster.tls.enabled"), "mutual TLS between the pods");
        assertEquals("tls-tcp", AgentexecCluster.effectiveConfig(config, s).getString("pekko.remote.artery.transport"));
        Config local = ClusterConfig.load(List.of(CONFIG.resolve("local.conf")));
        assertEquals("tcp", AgentexecCluster.effectiveConfig(local, ClusterSettings.fromConfig(local))
                .getString("pekko.remote.artery.transport"));
    }

    /**
     * The PostgreSQL configurations carry no default password (it was the user name): a node started
     * without AGENTEXEC_DB_PASSWORD refuses to start and names the variable.
     */
    @Test
    void postgresWithoutAPasswordIsRefusedNamingTheVariable() {
        org.junit.jupiter.api.Assumptions.assumeTrue(System.getenv("AGENTEXEC_DB_PASSWORD") == null,
                "AGENTEXEC_DB_PASSWORD is set in this environment: cluster.conf would take it");
        for (List<Path> layers : List.of(List.of(CONFIG.resolve("cluster.conf")),
                List.of(CONFIG.resolve("cluster.conf"), CONFIG.resolve("kubernetes.conf")))) {
            Config config = ClusterConfig.load(layers);
            assertMessage(() -> ClusterSettings.fromConfig(config), "AGENTEXEC_DB_PASSWORD");
            assertMessage(() -> AgentexecCluster.start(config), "agentexec.cluster.persistence.password");
        }
        // Any PostgreSQL configuration, not only ours; H2 (the embedded journal) needs none.
        assertMessage(() -> ClusterSettings.fromConfig(TestNodes.config(
                "agentexec.cluster.persistence { dialect = postgresql, url = \"jdbc:postgresql://db/x\" }")),
                "AGENTEXEC_DB_PASSWORD");
        assertEquals("", ClusterSettings.fromConfig(ClusterConfig.load(List.of(CONFIG.resolve("local.conf"))))
                .persistence().password());
    }

    @Test
    void badSettingsAreRefusedWithTheirName() {
        assertMessage(() -> ClusterSettings.fromConfig(TestNodes.config("agentexec.cluster.roles = \"gateway,cook\"")), "cook");
        assertMessage(() -> ClusterSettings.fromConfig(TestNodes.config("agentexec.cluster.roles = \"\"")), "roles");
        assertMessage(() -> ClusterSettings.fromConfig(TestNodes.config("agentexec.cluster.worker.slots = 0")), "slots");
        assertMessage(() -> ClusterSettings.fromConfig(TestNodes.config("agentexec.cluster.worker.queue = -1")), "queue");
        assertMessage(() -> ClusterSettings.fromConfig(TestNodes.config("agentexec.cluster.worker.file-queue = -1")), "file-queue");
        assertMessage(() -> ClusterSettings.fromConfig(TestNodes.config("agentexec.cluster.worker.file-op-timeout = 2m")),
                "must be shorter than agentexec.cluster.files.timeout");
        assertMessage(() -> ClusterSettings.fromConfig(TestNodes.config("agentexec.cluster.execution.max-attempts = 0")), "max-attempts");
        assertMessage(() -> ClusterSettings.fromConfig(TestNodes.config("agentexec.cluster.persistence.dialect = oracle")), "dialect");
        assertMessage(() -> ClusterSettings.fromConfig(TestNodes.config("agentexec.cluster.formation = dns")), "formation");
        assertMessage(() -> ClusterConfig.load(List.of(Path.of("no-such.conf"))), "not found");
    }

    @Test
    void journalUrlPointsAtTheConfiguredSchema() {
        var pg = new ClusterSettings.PersistenceSettings(Dialect.POSTGRESQL, "jdbc:postgresql://127.0.0.1/x", "u", "p", "s1", 2);
        assertEquals("jdbc:postgresql://127.0.0.1/x?currentSchema=s1", pg.journalUrl());
        var h2 = new ClusterSettings.PersistenceSettings(Dialect.H2, "jdbc:h2:mem:x", "u", "p", "", 2);
        assertEquals("jdbc:h2:mem:x", h2.journalUrl());
    }

    @Test
    void repliesAndEventsRoundTripThroughJackson() {
        ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), "serialization",
                TestNodes.config("pekko.actor.provider = local\npekko.loglevel = WARNING"));
        try {
            Serialization serialization = SerializationExtension.get(Adapter.toClassic(system));
            Limits limits = new Limits(Duration.ofSeconds(7), 64L << 20, 0.5, 32, 1024, 1 << 20);
            ExecutionRequest request = ExecutionRequest.builder(limits).block("python", "print(1)").env("A", "b")
                    .stdin(new byte[] {0, 1, 2}).file(WorkspaceFile.text("a.txt", "hi")).image("img:1").build();
            ExecutionResult result = new ExecutionResult(Verdict.MEMORY_LIMIT, 137, OptionalInt.of(9), "out", "err",
                    "both", true, false, 3, 3, 42, OptionalLong.of(1234), List.of(new FileWritten("f", 1)),
                    List.of(new BlockOutcome(0, "python", Verdict.MEMORY_LIMIT, 137, 42)), "killed", "docker", "exitcode: 137");
            List<Attempt> attempts = List.of(new Attempt(1, "w1", "worker lost", true), new Attempt(2, "w2", "completed", true));
            List<Object> messages = List.of(
                    new ExecutionReply.Completed("k", result, attempts, Optional.of("lost"), false),
                    new ExecutionReply.SandboxLost("k", "gone", attempts, true),
                    new ExecutionReply.Overloaded("k", "full"),
                    new ExecutionReply.Rejected("k", "closed"),
                    new ExecutionEntity.Accepted(request),
                    new ExecutionEntity.Finished(new ExecutionReply.Completed("k", result, attempts, Optional.empty(), true)),
                    new SandboxEntity.Created("python", limits),
                    new SandboxEntity.ExecutionFinished("k", new ExecutionReply.SandboxLost("k", "gone", attempts, false)),
                    new SandboxEntity.Created(SandboxSpec.of("bash", limits).withImage("python:3.12-slim")
                            .withDocker(DockerOptions.hardened().withTmpfs("/scratch", "rw,size=1m")
                                    .withRuntime(Optional.of("runsc")).withNamePrefix(Optional.of("ag2")))),
                    new SandboxEntity.Created(SandboxSpec.of("python", limits)),
                    new CancelReply("k", CancelReply.Outcome.CANCELLING, "cancelling"),
                    new ExecutionWorker.CancelJob("job"),
                    new ExecutionWorker.FileDone("op", deadWorker(system), new FileReply.Failed(
                            SandboxFileException.Kind.NOT_FOUND, "no such file"), true, false),
                    new ExecutionWorker.FileDone("op", deadWorker(system), new FileReply.Written("a.txt", 3), false, false),
                    new ExecutionWorker.FileDone("op", deadWorker(system), new FileReply.Invalid("path escapes"), false, false),
                    new SandboxView("s", SandboxView.Status.ACTIVE, Optional.of("bash"), Optional.of(limits),
                            Optional.empty(), 1, Optional.empty(), Optional.empty(), Optional.of("img:1"),
                            Optional.of(DockerOptions.hardened())));
            // Messages holding byte arrays or actor refs (records compare arrays by identity): compared by their parts.
            OutputChunk chunk = new OutputChunk("k", 3, OutputListener.Stream.STDERR, "é".getBytes(StandardCharsets.UTF_8), 7);
            OutputChunk chunkBack = (OutputChunk) roundTrip(serialization, chunk);
            assertEquals(List.of("k", 3L, OutputListener.Stream.STDERR, "é", 7L), List.of(chunkBack.executionKey(),
                    chunkBack.sequence(), chunkBack.stream(), chunkBack.text(), chunkBack.droppedBefore()));
            FileReply.Content content = (FileReply.Content) ((ExecutionWorker.FileDone) roundTrip(serialization,
                    new ExecutionWorker.FileDone("op", deadWorker(system), new FileReply.Content("a", new byte[] {1, 2}),
                            false, false))).reply();
            assertArrayEquals(new byte[] {1, 2}, content.data());
            ExecutionWorker.RunInSandbox run = new ExecutionWorker.RunInSandbox("job", "k", "s",
                    SandboxSpec.of("python", limits).withDocker(DockerOptions.hardened()), request, true,
                    List.of(deadWorker(system).unsafeUpcast()), deadWorker(system).unsafeUpcast());
            ExecutionWorker.RunInSandbox runBack = (ExecutionWorker.RunInSandbox) roundTrip(serialization, run);
            assertEquals(run.spec(), runBack.spec());
            assertEquals(1, runBack.output().size());
            ExecutionWorker.WriteFile write = new ExecutionWorker.WriteFile("op", "s", SandboxSpec.of("python", limits),
                    false, "a.txt", new byte[] {9}, deadWorker(system).unsafeUpcast());
            assertArrayEquals(new byte[] {9}, ((ExecutionWorker.WriteFile) roundTrip(serialization, write)).content());
            for (Object message : messages) {
                Serializer serializer = serialization.findSerializerFor(message);
                assertTrue(serializer.getClass().getName().contains("Jackson"), serializer.getClass().getName());
                byte[] bytes = serialization.serialize(message).get();
                Object back = serialization.deserialize(bytes, serializer.identifier(),
                        org.apache.pekko.serialization.Serializers.manifestFor(serializer, message)).get();
                if (message instanceof ExecutionEntity.Accepted accepted) {
                    ExecutionRequest copy = ((ExecutionEntity.Accepted) back).request();
                    assertEquals(accepted.request().limits(), copy.limits());
                    assertArrayEquals(accepted.request().stdin(), copy.stdin());
                    assertEquals(accepted.request().image(), copy.image());
                    assertArrayEquals(accepted.request().files().get(0).content(), copy.files().get(0).content());
                } else {
                    assertEquals(message, back);
                }
            }
        } finally {
            system.terminate();
        }
    }

    /** Journals written before sandboxes had an image and options: their Created events read back as defaults. */
    @Test
    void createdEventsWrittenBeforeImagesReadBackWithTheDefaults() {
        ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), "serialization",
                TestNodes.config("pekko.actor.provider = local\npekko.loglevel = WARNING"));
        try {
            Serialization serialization = SerializationExtension.get(Adapter.toClassic(system));
            Limits limits = new Limits(Duration.ofSeconds(7), 64L << 20, 0.5, 32, 1024, 1 << 20);
            OldCreated old = new OldCreated("python", limits);
            Serializer serializer = serialization.findSerializerFor(old);
            byte[] bytes = serialization.serialize(old).get();
            SandboxEntity.Created back = (SandboxEntity.Created) serialization.deserialize(bytes, serializer.identifier(),
                    SandboxEntity.Created.class.getName()).get();
            assertEquals(SandboxSpec.of("python", limits), back.spec());
        } finally {
            system.terminate();
        }
    }

    /** The shape of SandboxEntity.Created before this change. */
    record OldCreated(String language, Limits limits) implements CborSerializable {
    }

    private static Object roundTrip(Serialization serialization, Object message) {
        Serializer serializer = serialization.findSerializerFor(message);
        byte[] bytes = serialization.serialize(message).get();
        return serialization.deserialize(bytes, serializer.identifier(),
                org.apache.pekko.serialization.Serializers.manifestFor(serializer, message)).get();
    }

    /** An actor ref to put in messages: serialized as its path, like any other. */
    private static org.apache.pekko.actor.typed.ActorRef<ExecutionWorker.Command> deadWorker(ActorSystem<Void> system) {
        return Adapter.toTyped(Adapter.toClassic(system).deadLetters());
    }

    private static void assertMessage(org.junit.jupiter.api.function.Executable executable, String fragment) {
        RuntimeException e = assertThrows(RuntimeException.class, executable);
        assertTrue(String.valueOf(e.getMessage()).contains(fragment), e.getMessage());
    }
}
