package io.agentexec.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import com.typesafe.config.ConfigParseOptions;
import com.typesafe.config.ConfigUtil;
import io.agentexec.cluster.AgentexecCluster;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.PodStatusBuilder;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesCrudDispatcher;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import io.fabric8.mockwebserver.http.MockResponse;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.DriverManager;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.function.BooleanSupplier;
import java.util.stream.Collectors;
import java.util.stream.StreamSupport;
import org.apache.pekko.cluster.MemberStatus;
import org.apache.pekko.cluster.typed.Cluster;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Formation through the real discovery code, without a Kubernetes cluster: nodes started from config/kubernetes.conf
 * (as `serve /etc/agentexec/kubernetes.conf` layers it) with the environment the rendered cluster overlay gives
 * their pods, whose pekko-management bootstrap (kubernetes-api discovery, HTTPS with the service account's token
 * and CA files) lists the pods from a Kubernetes API server stand-in on loopback: fabric8's kubernetes-server-mock
 * in CRUD mode, holding pods made from the overlay's pod templates (labels, port names) with loopback IPs and
 * ports. Three gateway pods form one cluster; a worker pod started later joins it. A wrong label selector, service
 * name, port name, contact-point count or env variable in the configuration or the manifests fails here. The pods
 * talk mutual TLS as config/cluster.conf requires: the agentexec-tls Secret's stores (made by scripts/make-certs.sh)
 * are put where the pod's Secret volume mounts them, and the variables naming them are followed there.
 *
 * <p>The API server's address comes from environment variables (KUBERNETES_SERVICE_HOST/PORT in a pod, read with
 * sys.env by the discovery); here AGENTEXEC_TEST_K8S_API_HOST/PORT, which this module's surefire configuration sets
 * (the port reserved by build-helper's reserve-network-port), named through api-service-host/port-env-name.
 */
class KubernetesFormationTest {
    private static final String NAMESPACE = "agentexec";
    private static final Duration WAIT = Duration.ofMinutes(3);
    private static final String PG_URL = "jdbc:postgresql://127.0.0.1:5432/agentexec";
    private static final String PG_USER = "agentexec";
    private static final String PG_PASSWORD = "agentexec";

    private final List<AgentexecCluster> nodes = new ArrayList<>();
    private final Map<AgentexecCluster, Integer> managementPorts = new HashMap<>();
    private final String schema = "agentexec_k8s_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
    private KubernetesMockServer server;
    /** What k8s/secrets holds, by Secret and key, made as k8s/README.md says (TLS stores by scripts/make-certs.sh). */
    private final Map<String, Map<String, byte[]>> secretData = new HashMap<>();
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @TempDir
    Path secrets;
    /** A node's close: its coordinated shutdown's phases (10 s each by default) end well within this. */
    private static final Duration CLOSE_BOUND = Duration.ofMinutes(4);

    @AfterEach
    void stop() throws Exception {
        // Each node's close is bounded: runs saw a gateway's actor system never terminate after its coordinated
        // shutdown timed out in actor-system-terminate. AgentexecCluster.close() now gives up waiting after
        // agentexec.cluster.close-timeout (logging an error) and releases the engine; a close that still does not
        // return within this bound fails the test, after the others are closed and the schema dropped.
        List<String> hung = new ArrayList<>();
        for (int i = nodes.size() - 1; i >= 0; i--) {
            AgentexecCluster node = nodes.get(i);
            Thread closer = new Thread(node::close, "close-node-" + i);
            closer.setDaemon(true);
            closer.start();
            closer.join(CLOSE_BOUND.toMillis());
            if (closer.isAlive()) {
                hung.add("node " + i + " (" + node.selfAddress() + ") did not terminate within " + CLOSE_BOUND);
            }
        }
        if (server != null) {
            server.destroy();
        }
        try (var connection = DriverManager.getConnection(PG_URL, PG_USER, PG_PASSWORD);
             var statement = connection.createStatement()) {
            statement.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
        }
        assertTrue(hung.isEmpty(), "closing the pods' nodes: " + hung);
    }

    @Test
    void threeGatewayPodsFormOneClusterThroughTheKubernetesApiThenAWorkerPodJoins() throws Exception {
        String apiHost = System.getenv("AGENTEXEC_TEST_K8S_API_HOST");
        String apiPort = System.getenv("AGENTEXEC_TEST_K8S_API_PORT");
        assertNotNull(apiHost, "AGENTEXEC_TEST_K8S_API_HOST is not set (modules/deploy-tests/pom.xml sets it for surefire)");
        assertNotNull(apiPort, "AGENTEXEC_TEST_K8S_API_PORT is not set (modules/deploy-tests/pom.xml sets it for surefire)");

        List<HasMetadata> rendered = Repo.objects(Repo.kustomizeOverlay("cluster"));
        PodTemplateSpec gatewayTemplate = deployment(rendered, "agentexec-gateway").getSpec().getTemplate();
        PodTemplateSpec workerTemplate = deployment(rendered, "agentexec-worker").getSpec().getTemplate();

        // HTTPS with a self-signed certificate for "localhost": the only scheme the discovery speaks (it builds
        // https://HOST:PORT from the two variables and trusts the CA file at api-ca-path).
        MockWebServer web = new MockWebServer();
        server = new KubernetesMockServer(new Context(), web, new HashMap<>(), new JsonCrudDispatcher(), true);
        server.init(InetAddress.getByName("127.0.0.1"), Integer.parseInt(apiPort));
        Path ca = Path.of(web.getSelfSignedCertificate().certificatePath());
        Path token = Files.writeString(secrets.resolve("token"), "test-service-account-token");
        makeSecrets();

        try (KubernetesClient client = server.createClient()) {
            for (int i = 0; i < 3; i++) {
                start(client, gatewayTemplate, "agentexec-gateway-" + i, ca, token);
            }
            awaitOneCluster(3);
            assertTrue(web.getRequestCount() > 0, "the discovery never asked the API server stand-in");
            for (AgentexecCluster node : nodes) {
                assertEquals("tls-tcp", node.system().settings().config().getString("pekko.remote.artery.transport"),
                        "the pods talk mutual TLS (config/cluster.conf), with the stores the manifests mount");
            }
            for (AgentexecCluster node : nodes) {
                awaitReady(node);
            }

            AgentexecCluster worker = start(client, workerTemplate, "agentexec-worker-0", ca, token);
            awaitOneCluster(4);
            assertTrue(Cluster.get(worker.system()).selfMember().hasRole("worker"), "the worker pod's node has role worker");
            // Its readiness includes the worker check: the Docker daemon answers and the languages' images are there.
            awaitReady(worker);
        }
    }

    /**
     * The CRUD stand-in answers without a Content-Type; a real API server says application/json, and the discovery
     * refuses anything else ("Unsupported Content-Type"). Only that header is added.
     */
    private static final class JsonCrudDispatcher extends KubernetesCrudDispatcher {
        @Override
        public MockResponse dispatch(RecordedRequest request) {
            MockResponse response = super.dispatch(request);
            if (response.header("Content-Type") == null) {
                response.setHeader("Content-Type", "application/json");
            }
            return response;
        }
    }

    /**
     * The Secrets' contents: the journal's (this machine's PostgreSQL), the metrics token, and the cluster's TLS
     * stores made by scripts/make-certs.sh with one node certificate all pods share (as the agentexec-tls Secret).
     */
    private void makeSecrets() throws IOException {
        secretData.put("agentexec-postgres", Map.of("url", bytes(PG_URL), "user", bytes(PG_USER), "password", bytes(PG_PASSWORD)));
        secretData.put("agentexec-metrics", Map.of("token", bytes("metrics-token-of-the-formation-test")));
        Path certs = secrets.resolve("ca");
        Repo.makeCerts(certs, "node");
        secretData.put("agentexec-tls", Map.of(
                "node.p12", Files.readAllBytes(certs.resolve("node.p12")),
                "truststore.p12", Files.readAllBytes(certs.resolve("truststore.p12")),
                "password", Files.readAllBytes(certs.resolve("store-password"))));
    }

    private static byte[] bytes(String s) {
        return s.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    }

    /**
     * As the kubelet does for the pod: each Secret volume the node container mounts becomes a directory holding the
     * volume's items (all the Secret's keys without items). Answers mount path -> directory.
     */
    private Map<String, Path> mountSecrets(String pod, PodTemplateSpec template, Container container) throws IOException {
        Map<String, Path> mounted = new HashMap<>();
        for (var mount : container.getVolumeMounts()) {
            var volume = template.getSpec().getVolumes().stream().filter(v -> v.getName().equals(mount.getName()))
                    .findFirst().orElseThrow(() -> new AssertionError(pod + ": no volume " + mount.getName()));
            if (volume.getSecret() == null || !secretData.containsKey(volume.getSecret().getSecretName())) {
                continue;
            }
            Map<String, byte[]> data = secretData.get(volume.getSecret().getSecretName());
            Path dir = Files.createDirectories(secrets.resolve("pods").resolve(pod).resolve(volume.getName()));
            var items = volume.getSecret().getItems();
            if (items == null || items.isEmpty()) {
                for (var e : data.entrySet()) {
                    Files.write(dir.resolve(e.getKey()), e.getValue());
                }
            } else {
                for (var item : items) {
                    byte[] value = data.get(item.getKey());
                    assertNotNull(value, pod + ": volume " + volume.getName() + " mounts key " + item.getKey() + " of Secret "
                            + volume.getSecret().getSecretName() + ", which it does not hold");
                    Files.write(dir.resolve(item.getPath()), value);
                }
            }
            mounted.put(mount.getMountPath(), dir);
        }
        return mounted;
    }

    private static Deployment deployment(List<HasMetadata> objects, String name) {
        return objects.stream().filter(o -> o instanceof Deployment && o.getMetadata().getName().equals(name))
                .map(Deployment.class::cast).findFirst()
                .orElseThrow(() -> new AssertionError("the cluster overlay has no Deployment " + name));
    }

    /**
     * Creates the pod in the API stand-in (from the overlay's template, its ports moved to free loopback ones), then
     * starts a node with the pod's environment, as the container would.
     */
    private AgentexecCluster start(KubernetesClient client, PodTemplateSpec template, String name, Path ca, Path token)
            throws IOException {
        int management = freePort();
        int remoting = freePort();
        Container container = template.getSpec().getContainers().stream().filter(c -> c.getName().equals("node"))
                .findFirst().orElseThrow(() -> new AssertionError(name + ": no container 'node'"));
        Pod pod = new PodBuilder()
                .withNewMetadata().withName(name).withNamespace(NAMESPACE).withLabels(template.getMetadata().getLabels())
                .endMetadata()
                .withSpec(template.getSpec())
                .build();
        // Loopback: every pod has IP 127.0.0.1, so each gets its own ports (in a cluster they are all 8558 / 25520).
        for (Container c : pod.getSpec().getContainers()) {
            if (c.getName().equals("node")) {
                c.getPorts().forEach(p -> {
                    if ("management".equals(p.getName())) {
                        p.setContainerPort(management);
                    } else if ("remoting".equals(p.getName())) {
                        p.setContainerPort(remoting);
                    }
                });
            }
        }
        Pod created = client.pods().inNamespace(NAMESPACE).resource(pod).create();
        created.setStatus(new PodStatusBuilder().withPhase("Running").withPodIP("127.0.0.1").build());
        client.pods().inNamespace(NAMESPACE).resource(created).updateStatus();

        Map<String, Path> mounted = mountSecrets(name, template, container);
        Map<String, String> env = new LinkedHashMap<>();
        for (EnvVar var : container.getEnv()) {
            String value = valueOf(name, var);
            // A file of a mounted Secret (the TLS stores): where this test put the volume's files.
            for (var m : mounted.entrySet()) {
                if (value.startsWith(m.getKey() + "/")) {
                    value = m.getValue().resolve(value.substring(m.getKey().length() + 1)).toString();
                }
            }
            env.put(var.getName(), value);
        }
        // What differs on loopback: ports (all pods share 127.0.0.1), the test's own journal schema, speed.
        env.put("AGENTEXEC_MANAGEMENT_PORT", Integer.toString(management));
        env.put("AGENTEXEC_PORT", Integer.toString(remoting));
        env.put("AGENTEXEC_DB_SCHEMA", schema);
        env.put("AGENTEXEC_DB_POOL_SIZE", "2");
        env.put("AGENTEXEC_WARM_POOL_SIZE", "0");
        env.put("AGENTEXEC_DOCKER_RUNTIME_PROBE", "false");
        env.put("AGENTEXEC_SBR_STABLE_AFTER", "5s");
        StringBuilder overrides = new StringBuilder();
        overrides.append("pekko.discovery.kubernetes-api.api-ca-path = ").append(ConfigUtil.quoteString(ca.toString())).append('\n')
                .append("pekko.discovery.kubernetes-api.api-token-path = ").append(ConfigUtil.quoteString(token.toString())).append('\n')
                .append("pekko.discovery.kubernetes-api.api-service-host-env-name = AGENTEXEC_TEST_K8S_API_HOST\n")
                .append("pekko.discovery.kubernetes-api.api-service-port-env-name = AGENTEXEC_TEST_K8S_API_PORT\n")
                .append("pekko.loglevel = INFO\n");
        AgentexecCluster node = AgentexecCluster.start(podConfig(env, overrides.toString()));
        nodes.add(node);
        managementPorts.put(node, management);
        return node;
    }

    /**
     * The configuration `serve /etc/agentexec/kubernetes.conf` loads in a pod with this environment: as
     * ClusterConfig.load layers it, except that every module's reference.conf is resolved with the rest (not on its
     * own first), so that a {@code ${?VAR}} finds VAR at the root, where the pod's variables are put. Several pods
     * share this JVM and so cannot each have an environment; ClusterConfig's resolved reference.conf would read only
     * the JVM's (a variable that only reference.conf names, such as AGENTEXEC_TLS_KEY_STORE, would be lost).
     */
    private static Config podConfig(Map<String, String> env, String overrides) {
        Path file = Repo.ROOT.resolve("config/kubernetes.conf");
        ConfigFactory.invalidateCaches();
        return ConfigFactory.parseString(overrides)
                .withFallback(ConfigFactory.parseMap(env))
                .withFallback(ConfigFactory.systemProperties())
                .withFallback(ConfigFactory.parseFile(file.toFile(), ConfigParseOptions.defaults().setAllowMissing(false)))
                .withFallback(ConfigFactory.defaultApplication())
                .withFallback(ConfigFactory.defaultReferenceUnresolved())
                .resolve();
    }

    private String valueOf(String pod, EnvVar var) {
        if (var.getValue() != null) {
            return var.getValue();
        }
        var from = var.getValueFrom();
        if (from != null && from.getFieldRef() != null) {
            return switch (from.getFieldRef().getFieldPath()) {
                case "status.podIP" -> "127.0.0.1";
                case "metadata.namespace" -> NAMESPACE;
                case "metadata.name" -> pod;
                default -> throw new AssertionError(var.getName() + ": unexpected fieldRef " + from.getFieldRef().getFieldPath());
            };
        }
        if (from != null && from.getSecretKeyRef() != null) {
            var ref = from.getSecretKeyRef();
            byte[] value = secretData.getOrDefault(ref.getName(), Map.of()).get(ref.getKey());
            if (value == null) {
                throw new AssertionError(var.getName() + ": reads " + ref.getName() + "/" + ref.getKey()
                        + ", which this test's Secrets do not hold");
            }
            return new String(value, java.nio.charset.StandardCharsets.UTF_8);
        }
        throw new AssertionError(var.getName() + ": no value this test knows how to give");
    }

    private void awaitOneCluster(int size) {
        eventually(size + " nodes Up in one cluster, seen alike by each", () -> {
            Set<String> first = null;
            for (AgentexecCluster node : nodes) {
                var members = StreamSupport.stream(Cluster.get(node.system()).state().getMembers().spliterator(), false)
                        .filter(m -> m.status() == MemberStatus.up())
                        .map(m -> m.address().toString()).collect(Collectors.toSet());
                if (members.size() != size || (first != null && !first.equals(members))) {
                    return false;
                }
                first = members;
            }
            return true;
        });
    }

    /** pekko-management's /ready (the readiness probe of the manifests) answers 200. */
    private void awaitReady(AgentexecCluster node) {
        URI ready = URI.create("http://127.0.0.1:" + managementPorts.get(node) + "/ready");
        eventually(ready + " answers 200", () -> {
            try {
                return http.send(HttpRequest.newBuilder(ready).timeout(Duration.ofSeconds(10)).build(),
                        HttpResponse.BodyHandlers.ofString()).statusCode() == 200;
            } catch (IOException e) {
                return false;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        });
    }

    static void eventually(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + WAIT.toNanos();
        while (System.nanoTime() < deadline) {
            if (condition.getAsBoolean()) {
                return;
            }
            try {
                Thread.sleep(250);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new AssertionError(e);
            }
        }
        throw new AssertionError("timed out after " + WAIT + " waiting for: " + what);
    }

    static int freePort() {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }
}
