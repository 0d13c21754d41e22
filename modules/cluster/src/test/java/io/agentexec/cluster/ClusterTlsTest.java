package io.agentexec.cluster;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.pekko.actor.Address;
import org.apache.pekko.actor.typed.ActorRef;
import org.apache.pekko.actor.typed.ActorRefResolver;
import org.apache.pekko.actor.typed.Props;
import org.apache.pekko.actor.typed.javadsl.Behaviors;
import org.apache.pekko.cluster.Member;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Nodes started from config/cluster.conf talk mutual TLS: two nodes with certificates of the cluster's
 * CA (made by scripts/make-certs.sh) form a cluster and exchange messages; a node with a certificate
 * of another CA, and a node speaking plain TCP, never become members and never get a message through,
 * while they try all along. Misconfigurations are refused at start, by name.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ClusterTlsTest {
    private static final Path CONFIG = Path.of("../../config");
    private static final Path MAKE_CERTS = Path.of("../../scripts/make-certs.sh");

    private final String schema = TestNodes.newSchema();
    private final String password = "pw-" + UUID.randomUUID();
    private final List<AgentexecCluster> nodes = new ArrayList<>();
    private Path clusterCa;
    private Path otherCa;

    @BeforeAll
    void makeCertificates() throws Exception {
        Path root = Files.createTempDirectory("agentexec-certs");
        clusterCa = root.resolve("cluster");
        otherCa = root.resolve("other");
        makeCerts(clusterCa, "n1", "n2");
        makeCerts(otherCa, "n1");
    }

    private void makeCerts(Path dir, String... nodeNames) throws Exception {
        List<String> command = new ArrayList<>(List.of("bash", MAKE_CERTS.toString(), dir.toString()));
        command.addAll(List.of(nodeNames));
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
        builder.environment().put("AGENTEXEC_TLS_STORE_PASSWORD", password);
        builder.environment().put("AGENTEXEC_TLS_KEY_SIZE", "2048"); // quicker to make; the test needs no more
        Process process = builder.start();
        String output = new String(process.getInputStream().readAllBytes());
        assertTrue(process.waitFor(5, TimeUnit.MINUTES), "make-certs.sh finished");
        assertEquals(0, process.exitValue(), "make-certs.sh: " + output);
    }

    @AfterEach
    void stopNodes() {
        nodes.forEach(AgentexecCluster::close);
        nodes.clear();
    }

    @AfterAll
    void dropSchema() throws Exception {
        TestNodes.dropSchema(schema);
    }

    /** The TLS settings of a node holding {@code name}'s key store from {@code ca}'s directory. */
    private String stores(Path ca, String name) {
        return "agentexec.cluster.tls { key-store = \"" + ca.resolve(name + ".p12") + "\", key-store-password = \""
                + password + "\", trust-store = \"" + ca.resolve("truststore.p12") + "\", trust-store-password = \""
                + password + "\" }\n";
    }

    /** A gateway-only node from config/cluster.conf (mutual TLS on there), on loopback, with {@code extra}. */
    private AgentexecCluster node(int port, int seedPort, String extra) {
        AgentexecCluster node = AgentexecCluster.start(ClusterConfig.load(
                TestNodes.common(port, List.of(seedPort), "gateway") + TestNodes.postgres(schema) + extra,
                List.of(CONFIG.resolve("cluster.conf"))));
        nodes.add(node);
        return node;
    }

    private static Set<Address> upMembers(AgentexecCluster node) {
        Set<Address> up = new HashSet<>();
        for (Member member : Cluster.get(node.system()).state().getMembers()) {
            if (member.status() == MemberStatus.up()) {
                up.add(member.address());
            }
        }
        return up;
    }

    @Test
    void onlyNodesWithACertificateOfTheClusterCaJoinOrDeliverMessages() {
        int firstPort = TestNodes.freePort();
        AgentexecCluster first = node(firstPort, firstPort, stores(clusterCa, "n1"));
        TestNodes.eventually("the first node is up", () -> upMembers(first).contains(first.selfAddress()));
        ConcurrentLinkedQueue<String> received = new ConcurrentLinkedQueue<>();
        first.system().systemActorOf(Behaviors.receive(String.class).onMessage(String.class, message -> {
            received.add(message);
            return Behaviors.same();
        }).build(), "probe", Props.empty());
        String probe = "pekko://agentexec@127.0.0.1:" + firstPort + "/system/probe";

        // Two intruders try to join the first node and to message its probe, from before the second node
        // starts until well after it is in: one with a certificate of another CA, one without TLS.
        AgentexecCluster otherCaNode = node(TestNodes.freePort(), firstPort, stores(otherCa, "n1"));
        AgentexecCluster plainNode = node(TestNodes.freePort(), firstPort, "agentexec.cluster.tls.enabled = off\n");
        AtomicInteger intruderSends = new AtomicInteger();
        ScheduledExecutorService senders = Executors.newSingleThreadScheduledExecutor();
        try {
            ActorRef<String> viaOtherCa = ActorRefResolver.get(otherCaNode.system()).resolveActorRef(probe);
            ActorRef<String> viaPlain = ActorRefResolver.get(plainNode.system()).resolveActorRef(probe);
            senders.scheduleWithFixedDelay(() -> {
                int n = intruderSends.incrementAndGet();
                viaOtherCa.tell("from the other CA's node " + n);
                viaPlain.tell("from the plain-TCP node " + n);
            }, 0, 200, TimeUnit.MILLISECONDS);

            AgentexecCluster second = node(TestNodes.freePort(), firstPort, stores(clusterCa, "n2"));
            TestNodes.eventually("the second node (the cluster's CA) joined",
                    () -> upMembers(first).containsAll(Set.of(first.selfAddress(), second.selfAddress())));
            ActorRefResolver.get(second.system()).<String>resolveActorRef(probe).tell("from the second node");
            TestNodes.eventually("the second node's message arrived", () -> received.contains("from the second node"));
            int sentWhenSecondWasIn = intruderSends.get();
            TestNodes.eventually("the intruders kept trying after the second node got in",
                    () -> intruderSends.get() >= sentWhenSecondWasIn + 25);

            assertEquals(Set.of(first.selfAddress(), second.selfAddress()), upMembers(first),
                    "only the nodes of the cluster's CA are members");
            assertEquals(Set.of(first.selfAddress(), second.selfAddress()), upMembers(second));
            for (AgentexecCluster intruder : List.of(otherCaNode, plainNode)) {
                assertNotEquals(MemberStatus.up(), Cluster.get(intruder.system()).selfMember().status(),
                        intruder.selfAddress() + " never became a member");
                for (Member member : Cluster.get(first.system()).state().getMembers()) {
                    assertNotEquals(intruder.selfAddress(), member.address(), "not even joining");
                }
            }
            assertEquals(List.of("from the second node"), List.copyOf(received),
                    "no message of the intruders got through (" + intruderSends.get() + " sent by each)");
        } finally {
            senders.shutdownNow();
        }
    }

    @Test
    void misconfiguredTransportsAreRefusedAtStartByName() {
        int port = TestNodes.freePort();
        // cluster.conf turns TLS on: a node without its stores does not start.
        assertRefused(() -> node(port, port, ""), "AGENTEXEC_TLS_KEY_STORE");
        assertRefused(() -> node(port, port, stores(clusterCa, "n1")
                + "agentexec.cluster.tls.key-store-password = \"wrong\"\n"), "AGENTEXEC_TLS_KEY_STORE_PASSWORD");
        assertRefused(() -> node(port, port, stores(clusterCa, "n1")
                + "agentexec.cluster.tls.trust-store = \"" + clusterCa.resolve("missing.p12") + "\"\n"),
                "AGENTEXEC_TLS_TRUST_STORE");
        // Plain TCP bound beyond loopback: refused unless explicitly allowed.
        assertRefused(() -> node(port, port, "agentexec.cluster.tls.enabled = off\n"
                + "pekko.remote.artery.bind.hostname = \"0.0.0.0\"\n"), "AGENTEXEC_ALLOW_PLAINTEXT_REMOTING");
    }

    private void assertRefused(Runnable start, String fragment) {
        int before = nodes.size();
        try {
            start.run();
        } catch (IllegalArgumentException e) {
            assertTrue(e.getMessage().contains(fragment), e.getMessage());
            return;
        } finally {
            if (nodes.size() > before) {
                nodes.remove(nodes.size() - 1).close();
            }
        }
        throw new AssertionError("the node started; expected a refusal naming " + fragment);
    }
}
