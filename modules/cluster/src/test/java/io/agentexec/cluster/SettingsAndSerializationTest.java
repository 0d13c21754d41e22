package io.agentexec.cluster;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import io.agentexec.cluster.ClusterSettings.Formation;
import io.agentexec.cluster.api.Attempt;
import io.agentexec.cluster.api.CancelReply;
import io.agentexec.cluster.api.ExecutionOutcome;
import io.agentexec.cluster.api.FileReply;
import io.agentexec.cluster.api.OutputChunk;
import io.agentexec.cluster.api.SandboxFileException;
import io.agentexec.cluster.api.SandboxSpec;
import io.agentexec.cluster.api.SandboxView;
import io.agentexec.cluster.worker.ExecutionWorker;
import io.agentexec.sandbox.agent.OutputListener;
import io.agentexec.cluster.execution.ExecutionEntity;
import io.agentexec.cluster.persistence.Dialect;
import io.agentexec.cluster.sandbox.SandboxEntity;
import io.agentexec.sandbox.model.BlockOutcome;
import io.agentexec.sandbox.model.ExecutionRequest;
import io.agentexec.sandbox.model.ExecutionResult;
import io.agentexec.sandbox.model.FileWritten;
import io.agentexec.sandbox.model.Limits;
import io.agentexec.sandbox.model.SandboxOptions;
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
        var h2 = new ClusterSettings.PersistenceSettings(Dialect.H2, "jdbc:h2:mem:x", "u", "p", "s2", 2);
        assertEquals("jdbc:h2:mem:x;DB_CLOSE_ON_EXIT=FALSE;SCHEMA=s2", h2.journalUrl());
    }

    @Test
    void anH2JournalStaysOpenUntilTheNodeClosesItUnlessTheOperatorSaysOtherwise() {
        // H2's own shutdown hook would close it under the node's drain (NodeStopTest).
        assertEquals("jdbc:h2:file:./data/a;WRITE_DELAY=0;DB_CLOSE_ON_EXIT=FALSE", new ClusterSettings.PersistenceSettings(
                Dialect.H2, "jdbc:h2:file:./data/a;WRITE_DELAY=0", "u", "", "", 2).url());
        assertEquals("jdbc:h2:mem:x;db_close_on_exit=true", new ClusterSettings.PersistenceSettings(
                Dialect.H2, "jdbc:h2:mem:x;db_close_on_exit=true", "u", "", "", 2).url());
        assertEquals("jdbc:postgresql://127.0.0.1/x", new ClusterSettings.PersistenceSettings(
                Dialect.POSTGRESQL, "jdbc:postgresql://127.0.0.1/x", "u", "p", "", 2).url());
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
                    new ExecutionOutcome.Completed("k", result, attempts, Optional.of("lost"), false),
                    new ExecutionOutcome.SandboxLost("k", "gone", attempts, true),
                    new ExecutionOutcome.Overloaded("k", "full"),
                    new ExecutionOutcome.Rejected("k", "closed"),
                    new ExecutionOutcome.NotFound("k", "no sandbox"),
                    new ExecutionEntity.Accepted(request),
                    new ExecutionEntity.Finished(new ExecutionOutcome.Completed("k", result, attempts, Optional.empty(), true)),
                    new SandboxEntity.Created("python", limits),
                    new SandboxEntity.ExecutionFinished("k", new ExecutionOutcome.SandboxLost("k", "gone", attempts, false)),
                    new SandboxEntity.Created(SandboxSpec.of("bash", limits).withImage("python:3.12-slim")
                            .withDocker(SandboxOptions.hardened().withTmpfs("/scratch", "rw,size=1m")
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
                            Optional.of(SandboxOptions.hardened())));
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
                    SandboxSpec.of("python", limits).withDocker(SandboxOptions.hardened()), request, true,
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

    /**
     * A Created event as the journal holds it from before the options became backend-neutral: these are the exact
     * bytes the previous version wrote (its Docker options type in the {@code docker} field, serialized with the
     * cluster's Jackson CBOR serializer, id 33, manifest the event's class name). They read back as the same spec.
     */
    @Test
    void createdEventsWrittenWithDockerOptionsReadBackAsSandboxOptions() {
        String written = "bf686c616e67756167656462617368666c696d697473bf6774696d656f757464505437536b6d656d6f727942"
                + "797465731a040000006463707573fb3fe000000000000064706964731820746f7574707574427974657350657253747265"
                + "616d1904006e776f726b737061636542797465731a00100000ff65696d61676570707974686f6e3a332e31322d736c696d"
                + "66646f636b6572bf6b6e6574776f726b4d6f6465646e6f6e6576726561644f6e6c79526f6f7446696c6573797374656df5"
                + "65746d706673bf682f736372617463686a72772c73697a653d316d642f746d70781872772c6e6f737569642c6e6f646576"
                + "2c73697a653d36346dff647573657269313030303a313030306763617044726f708163414c4c6f6e6f4e6577507269766"
                + "96c65676573f56772756e74696d656572756e73636a6e616d6550726566697863616732ffff";
        ActorSystem<Void> system = ActorSystem.create(Behaviors.empty(), "serialization",
                TestNodes.config("pekko.actor.provider = local\npekko.loglevel = WARNING"));
        try {
            Serialization serialization = SerializationExtension.get(Adapter.toClassic(system));
            Limits limits = new Limits(Duration.ofSeconds(7), 64L << 20, 0.5, 32, 1024, 1 << 20);
            SandboxEntity.Created back = (SandboxEntity.Created) serialization.deserialize(
                    java.util.HexFormat.of().parseHex(written), 33, SandboxEntity.Created.class.getName()).get();
            assertEquals(SandboxSpec.of("bash", limits).withImage("python:3.12-slim")
                    .withDocker(SandboxOptions.hardened().withTmpfs("/scratch", "rw,size=1m").withUser("1000:1000")
                            .withRuntime(Optional.of("runsc")).withNamePrefix(Optional.of("ag2"))), back.spec());
        } finally {
            system.terminate();
        }
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
