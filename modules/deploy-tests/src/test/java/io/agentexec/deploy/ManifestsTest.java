package io.agentexec.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.agentexec.cluster.ClusterConfig;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HTTPGetAction;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.apps.DaemonSet;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyPort;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import java.io.IOException;
import java.io.InputStream;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What an operator applies, checked without a cluster: every overlay (and the Secrets kustomization, with its
 * example files) renders with {@code kubectl kustomize}; every rendered object is a known Kubernetes kind whose every
 * field the Kubernetes schema knows (fabric8's kubernetes-model: a field it does not know lands in
 * additionalProperties, which must stay empty); and every name the manifests share with the code exists there: env
 * variables, probe paths, port names and numbers, the config file the pods are started with, Secret keys, the
 * discovery's label selector and port name, the split-brain resolver's role, image tags.
 */
class ManifestsTest {
    private static final Map<String, List<HasMetadata>> RENDERED = new LinkedHashMap<>();
    /** What each drain's coordinated-shutdown phase adds to its drain timeout. */
    private static final long PHASE_SLACK_SECONDS = io.agentexec.cluster.NodeShutdown.PHASE_SLACK.toSeconds();
    /**
     * Sharding's hand-over and the leave after the drains: seconds where nothing is left to wait for (pekko gives each
     * of those phases 10 s at most; a node that overruns is killed by the kubelet, which the other nodes see as a
     * crash: its shards restart elsewhere from the journal).
     */
    private static final long LEAVE_SECONDS = 10;
    /** The node's configuration as a pod without overrides loads it. */
    private static Config config;
    /** Text of every reference.conf on the node's classpath, config/*.conf, and the image scripts. */
    private static String configText;
    private static String scriptText;

    @BeforeAll
    static void render() throws IOException {
        for (String overlay : Repo.OVERLAYS) {
            RENDERED.put(overlay, Repo.objects(Repo.kustomizeOverlay(overlay)));
        }
        config = ClusterConfig.load(List.of(Repo.ROOT.resolve("config/kubernetes.conf")));
        StringBuilder text = new StringBuilder();
        for (URL url : Collections.list(ManifestsTest.class.getClassLoader().getResources("reference.conf"))) {
            try (InputStream in = url.openStream()) {
                text.append(new String(in.readAllBytes(), StandardCharsets.UTF_8)).append('\n');
            }
        }
        try (Stream<Path> files = Files.list(Repo.ROOT.resolve("config"))) {
            for (Path p : files.filter(p -> p.toString().endsWith(".conf")).toList()) {
                text.append(Files.readString(p)).append('\n');
            }
        }
        configText = text.toString();
        StringBuilder scripts = new StringBuilder();
        try (Stream<Path> files = Files.list(Repo.ROOT.resolve("images/node"))) {
            for (Path p : files.toList()) {
                scripts.append(Files.readString(p)).append('\n');
            }
        }
        scriptText = scripts.toString();
    }

    @Test
    void everyOverlayRendersToObjectsOfKnownKindsWithOnlyFieldsTheSchemaKnows() {
        for (var entry : RENDERED.entrySet()) {
            assertFalse(entry.getValue().isEmpty(), entry.getKey() + " renders nothing");
            for (HasMetadata object : entry.getValue()) {
                String where = entry.getKey() + ": " + object.getKind() + "/" + object.getMetadata().getName();
                assertFalse(object instanceof GenericKubernetesResource, where + ": not a known Kubernetes kind ("
                        + object.getApiVersion() + ")");
                assertEquals("agentexec", Optional.ofNullable(object.getMetadata().getNamespace()).orElse(
                        object.getKind().equals("Namespace") ? "agentexec" : "(none)"), where + ": namespace");
                List<String> unknown = new ArrayList<>();
                unknownFields(object, object.getKind(), unknown);
                assertTrue(unknown.isEmpty(), where + ": fields the schema does not know: " + unknown);
            }
        }
    }

    @Test
    void theSecretsKustomizationRendersFromItsExamplesAndHoldsEveryKeyThePodsRead(@TempDir Path copy) throws IOException {
        // The kustomization and its examples only: an operator's own files beside them (git-ignored) stay out.
        Path source = Repo.ROOT.resolve("k8s/secrets");
        try (Stream<Path> files = Files.list(source)) {
            for (Path p : files.filter(Files::isRegularFile).toList()) {
                String name = p.getFileName().toString();
                if (name.endsWith(".example")) {
                    Files.copy(p, copy.resolve(name.substring(0, name.length() - 8)));
                } else if (name.equals("kustomization.yaml")) {
                    Files.copy(p, copy.resolve(name));
                }
            }
        }
        // The TLS stores as k8s/README.md makes them: scripts/make-certs.sh in a CA directory of its own, then the
        // node's store, the trust store and the password copied to tls/ (never the CA's key).
        Path ca = copy.resolve("ca");
        Repo.makeCerts(ca, "node");
        Files.createDirectory(copy.resolve("tls"));
        for (String file : List.of("node.p12", "truststore.p12", "store-password")) {
            Files.copy(ca.resolve(file), copy.resolve("tls").resolve(file));
        }
        Map<String, Set<String>> keys = new HashMap<>();
        for (HasMetadata object : Repo.objects(Repo.kustomize(copy))) {
            List<String> unknown = new ArrayList<>();
            unknownFields(object, "Secret", unknown);
            assertTrue(unknown.isEmpty(), "k8s/secrets: fields the schema does not know: " + unknown);
            Secret secret = assertInstance(Secret.class, object);
            keys.put(secret.getMetadata().getName(), secret.getData().keySet());
        }
        for (var entry : RENDERED.entrySet()) {
            for (PodTemplateSpec template : templates(entry.getValue()).values()) {
                for (Container c : allContainers(template.getSpec())) {
                    for (EnvVar var : c.getEnv()) {
                        if (var.getValueFrom() != null && var.getValueFrom().getSecretKeyRef() != null) {
                            var ref = var.getValueFrom().getSecretKeyRef();
                            assertTrue(keys.getOrDefault(ref.getName(), Set.of()).contains(ref.getKey()),
                                    entry.getKey() + ": " + var.getName() + " reads " + ref.getName() + "/" + ref.getKey()
                                            + ", which k8s/secrets does not make (" + keys + ")");
                        }
                    }
                }
                for (Volume v : template.getSpec().getVolumes()) {
                    if (v.getSecret() != null) {
                        assertTrue(keys.containsKey(v.getSecret().getSecretName()), entry.getKey() + ": volume " + v.getName()
                                + " mounts Secret " + v.getSecret().getSecretName() + ", which k8s/secrets does not make");
                        for (var item : Optional.ofNullable(v.getSecret().getItems()).orElse(List.of())) {
                            assertTrue(keys.get(v.getSecret().getSecretName()).contains(item.getKey()), entry.getKey()
                                    + ": volume " + v.getName() + " mounts key " + item.getKey() + " of Secret "
                                    + v.getSecret().getSecretName() + ", which k8s/secrets does not make (" + keys + ")");
                        }
                    }
                }
                // The keys file the gateway reads is the file that Secret holds.
                envValue(template, "AGENTEXEC_KEYS_FILE").ifPresent(file -> assertTrue(
                        keys.get("agentexec-keys").contains(Path.of(file).getFileName().toString()),
                        entry.getKey() + ": AGENTEXEC_KEYS_FILE " + file + " is not a key of Secret agentexec-keys"));
            }
        }
    }

    @Test
    void everyAgentexecEnvVariableInTheManifestsIsReadByTheConfigurationOrTheImageScripts() {
        Set<String> unknown = new TreeSet<>();
        for (var entry : RENDERED.entrySet()) {
            for (PodTemplateSpec template : templates(entry.getValue()).values()) {
                for (Container c : allContainers(template.getSpec())) {
                    for (EnvVar var : c.getEnv()) {
                        String name = var.getName();
                        boolean known;
                        if (name.startsWith("AGENTEXEC_")) {
                            known = configText.contains("${?" + name + "}") || scriptText.contains(name);
                        } else {
                            // docker-java (the worker's engine) and the image loader read the daemon's address here.
                            known = name.equals("DOCKER_HOST");
                        }
                        if (!known) {
                            unknown.add(entry.getKey() + ": " + c.getName() + ": " + name);
                        }
                    }
                }
            }
        }
        assertTrue(unknown.isEmpty(), "env variables nothing reads (no ${?NAME} in a reference.conf or config/*.conf, "
                + "not in images/node/*): " + unknown);
    }

    /**
     * config/kubernetes.conf includes cluster.conf, which turns on mutual TLS between the nodes: a node refuses to
     * start without a key store and a trust store. Every node container names both as files of a mounted Secret
     * volume (so they exist where the variables say) and reads their passwords from a Secret, never from the manifest.
     */
    @Test
    void everyNodeHasItsClusterTlsStoresFromAMountedSecretAndTheirPasswordsFromASecret() {
        assertTrue(config.getBoolean("agentexec.cluster.tls.enabled"),
                "config/kubernetes.conf runs the cluster with mutual TLS (agentexec.cluster.tls.enabled)");
        for (var entry : RENDERED.entrySet()) {
            for (var t : templates(entry.getValue()).entrySet()) {
                String where = entry.getKey() + ": " + t.getKey();
                PodSpec spec = t.getValue().getSpec();
                Container node = node(t.getValue(), where);
                envValue(t.getValue(), "AGENTEXEC_TLS").ifPresent(v -> assertTrue(Set.of("on", "true", "yes").contains(v),
                        where + ": AGENTEXEC_TLS=" + v + " turns off TLS between pods"));
                for (String store : List.of("AGENTEXEC_TLS_KEY_STORE", "AGENTEXEC_TLS_TRUST_STORE")) {
                    Path file = Path.of(envValue(t.getValue(), store).orElseThrow(() -> new AssertionError(where + ": "
                            + store + " is not set (with TLS on the node refuses to start without it)")));
                    VolumeMount mount = node.getVolumeMounts().stream()
                            .filter(m -> file.getParent().equals(Path.of(m.getMountPath()))).findFirst()
                            .orElseThrow(() -> new AssertionError(where + ": " + store + " " + file + ": nothing is mounted at "
                                    + file.getParent()));
                    assertEquals(Boolean.TRUE, mount.getReadOnly(), where + ": " + mount.getMountPath() + " read-only");
                    Volume volume = spec.getVolumes().stream().filter(v -> v.getName().equals(mount.getName())).findFirst()
                            .orElseThrow();
                    assertTrue(volume.getSecret() != null, where + ": " + store + " is on volume " + volume.getName()
                            + ", which is not a Secret");
                    List<String> paths = Optional.ofNullable(volume.getSecret().getItems()).orElse(List.of()).stream()
                            .map(k -> k.getPath()).toList();
                    assertTrue(paths.isEmpty() || paths.contains(file.getFileName().toString()), where + ": " + store + " "
                            + file + " is not one of the items of Secret " + volume.getSecret().getSecretName() + " " + paths);
                }
                for (String password : List.of("AGENTEXEC_TLS_KEY_STORE_PASSWORD", "AGENTEXEC_TLS_TRUST_STORE_PASSWORD")) {
                    assertTrue(secretRef(node, password).isPresent(), where + ": " + password + " must come from a Secret");
                }
            }
        }
    }

    /**
     * The metrics name the cluster's internal addresses: the gateway refuses a metrics listener beyond loopback
     * without a token (agentexec.gateway.metrics.token). A pod that declares a metrics port for Prometheus binds it
     * to the pod IP (loopback would be unreachable) and reads the token from a Secret.
     */
    @Test
    void metricsOnThePodIpAreGuardedByTheTokenFromASecret() {
        for (var entry : RENDERED.entrySet()) {
            for (var t : templates(entry.getValue()).entrySet()) {
                String where = entry.getKey() + ": " + t.getKey();
                Container node = node(t.getValue(), where);
                if (node.getPorts().stream().noneMatch(p -> "metrics".equals(p.getName()))) {
                    continue;
                }
                EnvVar host = node.getEnv().stream().filter(e -> e.getName().equals("AGENTEXEC_METRICS_HOST")).findFirst()
                        .orElseThrow(() -> new AssertionError(where + ": a metrics port, but AGENTEXEC_METRICS_HOST is not set ("
                                + config.getString("agentexec.gateway.metrics.host") + ": unreachable from Prometheus)"));
                assertTrue(host.getValueFrom() != null && host.getValueFrom().getFieldRef() != null
                                && host.getValueFrom().getFieldRef().getFieldPath().equals("status.podIP"),
                        where + ": AGENTEXEC_METRICS_HOST is the pod IP (status.podIP), got " + host);
                assertTrue(secretRef(node, "AGENTEXEC_METRICS_TOKEN").isPresent(), where
                        + ": metrics beyond loopback need AGENTEXEC_METRICS_TOKEN, from a Secret (the node refuses to start without)");
            }
        }
    }

    /** No configuration carries the journal's password: every node reads AGENTEXEC_DB_PASSWORD from a Secret. */
    @Test
    void theDatabasePasswordComesFromASecret() {
        assertEquals("postgresql", config.getString("agentexec.cluster.persistence.dialect"));
        for (var entry : RENDERED.entrySet()) {
            for (var t : templates(entry.getValue()).entrySet()) {
                String where = entry.getKey() + ": " + t.getKey();
                assertTrue(secretRef(node(t.getValue(), where), "AGENTEXEC_DB_PASSWORD").isPresent(),
                        where + ": AGENTEXEC_DB_PASSWORD must come from a Secret (a node without it refuses to start)");
            }
        }
    }

    @Test
    void probesNameExistingPathsOnPortsTheContainerDeclares() throws IOException {
        String management = config.getString("pekko.management.http.base-path");
        Set<String> managementPaths = Set.of(
                path(management, config.getString("pekko.management.health-checks.readiness-path")),
                path(management, config.getString("pekko.management.health-checks.liveness-path")),
                path(management, config.getString("pekko.management.health-checks.startup-path")));
        Set<String> gatewayPaths = openApiPaths();
        for (var entry : RENDERED.entrySet()) {
            for (var t : templates(entry.getValue()).entrySet()) {
                for (Container c : t.getValue().getSpec().getContainers()) {
                    String where = entry.getKey() + ": " + t.getKey() + "/" + c.getName();
                    Map<String, Integer> ports = c.getPorts().stream()
                            .collect(Collectors.toMap(ContainerPort::getName, ContainerPort::getContainerPort));
                    assertTrue(c.getReadinessProbe() != null && c.getLivenessProbe() != null && c.getStartupProbe() != null,
                            where + ": readiness, liveness and startup probes");
                    for (Probe probe : List.of(c.getReadinessProbe(), c.getLivenessProbe(), c.getStartupProbe())) {
                        HTTPGetAction get = probe.getHttpGet();
                        assertTrue(get != null, where + ": an HTTP probe");
                        String port = get.getPort().getStrVal();
                        assertTrue(port != null && ports.containsKey(port), where + ": probe port '" + get.getPort()
                                + "' is not a port name of the container " + ports.keySet());
                        Set<String> paths = port.equals("management") ? managementPaths : gatewayPaths;
                        assertTrue(paths.contains(get.getPath()), where + ": probe path " + get.getPath() + " on port "
                                + port + " is not served there " + paths);
                    }
                    assertEquals("/ready", c.getReadinessProbe().getHttpGet().getPath(), where + ": readiness");
                    assertEquals("/alive", c.getLivenessProbe().getHttpGet().getPath(), where + ": liveness");
                }
            }
        }
    }

    @Test
    void portNamesAndNumbersAreTheConfiguredOnesAndServicesAndPoliciesUseThem() {
        int remoting = config.getInt("pekko.remote.artery.canonical.port");
        int management = config.getInt("pekko.management.http.port");
        int http = config.getInt("agentexec.gateway.port");
        String portName = config.getString("pekko.management.cluster.bootstrap.contact-point-discovery.port-name");
        assertEquals("management", portName, "the bootstrap probes the port named like the manifests' one");
        for (var entry : RENDERED.entrySet()) {
            Map<String, PodTemplateSpec> templates = templates(entry.getValue());
            Set<Integer> declared = new TreeSet<>();
            for (var t : templates.entrySet()) {
                Container node = node(t.getValue(), entry.getKey() + ": " + t.getKey());
                String where = entry.getKey() + ": " + t.getKey();
                Map<String, Integer> ports = node.getPorts().stream()
                        .collect(Collectors.toMap(ContainerPort::getName, ContainerPort::getContainerPort));
                assertEquals(remoting, ports.get("remoting"), where + ": remoting = pekko.remote.artery.canonical.port");
                assertEquals(management, ports.get(portName), where + ": " + portName + " = pekko.management.http.port");
                int metrics = Integer.parseInt(envValue(t.getValue(), "AGENTEXEC_METRICS_PORT")
                        .orElseThrow(() -> new AssertionError(where + ": AGENTEXEC_METRICS_PORT is not set")));
                assertEquals(metrics, ports.get("metrics"), where + ": metrics = AGENTEXEC_METRICS_PORT");
                assertEquals(String.valueOf(metrics), t.getValue().getMetadata().getAnnotations().get("prometheus.io/port"),
                        where + ": prometheus.io/port");
                boolean api = "true".equals(t.getValue().getMetadata().getLabels().get("agentexec.io/api"));
                if (api) {
                    assertEquals(http, ports.get("http"), where + ": http = agentexec.gateway.port");
                    assertEquals(Optional.of("0.0.0.0"), envValue(t.getValue(), "AGENTEXEC_GATEWAY_HOST"),
                            where + ": an API pod listens beyond its loopback");
                    // Its clients are the ingress controller's pods only (NetworkPolicy agentexec-api): the gateway's
                    // per-client limit (agentexec.gateway.connections.max-per-client) would cap the whole controller.
                    assertEquals(Optional.of("0"), envValue(t.getValue(), "AGENTEXEC_MAX_CONNECTIONS_PER_CLIENT"),
                            where + ": behind the ingress, no per-client connection limit in the node");
                } else {
                    assertFalse(ports.containsKey("http"), where + ": a pod without the API label declares no http port");
                }
                declared.addAll(ports.values());
            }
            for (HasMetadata o : entry.getValue()) {
                if (o instanceof Service service) {
                    List<PodTemplateSpec> selected = templates.values().stream()
                            .filter(t -> t.getMetadata().getLabels().entrySet().containsAll(service.getSpec().getSelector().entrySet()))
                            .toList();
                    assertFalse(selected.isEmpty(), entry.getKey() + ": Service " + service.getMetadata().getName() + " selects no pod");
                    for (var port : service.getSpec().getPorts()) {
                        for (PodTemplateSpec t : selected) {
                            assertTrue(node(t, "").getPorts().stream().anyMatch(p -> p.getName().equals(port.getTargetPort().getStrVal())),
                                    entry.getKey() + ": Service port " + port.getName() + " targets '" + port.getTargetPort()
                                            + "', which a selected pod does not name");
                        }
                    }
                }
                if (o instanceof NetworkPolicy policy) {
                    Stream.concat(policy.getSpec().getIngress().stream().flatMap(r -> r.getPorts().stream()),
                                    policy.getSpec().getEgress().stream()
                                            .filter(r -> r.getTo() != null && r.getTo().stream().anyMatch(p -> p.getPodSelector() != null))
                                            .flatMap(r -> r.getPorts().stream()))
                            .map(NetworkPolicyPort::getPort)
                            .forEach(p -> assertTrue(declared.contains(p.getIntVal()), entry.getKey() + ": NetworkPolicy "
                                    + policy.getMetadata().getName() + " opens port " + p + ", which no agentexec pod declares"));
                }
            }
        }
    }

    @Test
    void podsCarryTheLabelsTheDiscoverySelectsAndTheSplitBrainResolverCountsGatewaysOnly() {
        String selector = String.format(config.getString("pekko.discovery.kubernetes-api.pod-label-selector"),
                config.getString("pekko.management.cluster.bootstrap.contact-point-discovery.service-name"));
        String[] pair = selector.split("=", 2);
        assertTrue(config.getBoolean("pekko.discovery.kubernetes-api.use-raw-ip"),
                "contact points by pod IP: pod DNS records are not served by every cluster DNS");
        assertEquals("gateway", config.getString("pekko.cluster.split-brain-resolver.keep-majority.role"));
        assertEquals("keep-majority", config.getString("pekko.cluster.split-brain-resolver.active-strategy"));
        assertEquals("kubernetes-bootstrap", config.getString("agentexec.cluster.formation"));
        assertEquals("docker", config.getString("agentexec.sandbox.backend"));
        for (var entry : RENDERED.entrySet()) {
            Set<String> roles = new TreeSet<>();
            for (var t : templates(entry.getValue()).entrySet()) {
                String where = entry.getKey() + ": " + t.getKey();
                assertEquals(pair[1], t.getValue().getMetadata().getLabels().get(pair[0]),
                        where + ": the discovery lists pods by " + selector);
                String podRoles = envValue(t.getValue(), "AGENTEXEC_ROLES")
                        .orElseThrow(() -> new AssertionError(where + ": AGENTEXEC_ROLES is not set"));
                roles.addAll(List.of(podRoles.split(",")));
                int contactPoints = Integer.parseInt(envValue(t.getValue(), "AGENTEXEC_REQUIRED_CONTACT_POINTS").orElse(
                        config.getString("pekko.management.cluster.bootstrap.contact-point-discovery.required-contact-point-nr")));
                int starting = initialPods(entry.getValue());
                assertTrue(contactPoints >= 1 && contactPoints <= starting, where + ": required-contact-point-nr "
                        + contactPoints + ", but a first deployment starts " + starting + " pod(s): it would never form");
            }
            assertTrue(roles.contains("gateway") && roles.contains("worker"), entry.getKey() + ": both roles run " + roles);
        }
    }

    @Test
    void podsStartWithAConfigFileTheirConfigMapHoldsAndWithTheVersionsImages() {
        Pattern image = Pattern.compile("agentexec/(node|dind):(.+)");
        for (var entry : RENDERED.entrySet()) {
            for (var t : templates(entry.getValue()).entrySet()) {
                String where = entry.getKey() + ": " + t.getKey();
                PodSpec spec = t.getValue().getSpec();
                for (Container c : allContainers(spec)) {
                    Matcher m = image.matcher(c.getImage());
                    assertTrue(m.matches(), where + "/" + c.getName() + ": image " + c.getImage() + " is not one images/build.sh makes");
                    assertEquals(Repo.version(), m.group(2), where + "/" + c.getName() + ": the tag is the project version");
                    assertEquals("IfNotPresent", c.getImagePullPolicy(), where + "/" + c.getName() + ": loaded images, no registry");
                }
                Container node = node(t.getValue(), where);
                assertEquals("serve", node.getArgs().get(0), where + ": the node runs `agentexec serve FILE`");
                Path file = Path.of(node.getArgs().get(1));
                VolumeMount mount = node.getVolumeMounts().stream()
                        .filter(v -> file.getParent().equals(Path.of(v.getMountPath()))).findFirst()
                        .orElseThrow(() -> new AssertionError(where + ": nothing is mounted at " + file.getParent()));
                Volume volume = spec.getVolumes().stream().filter(v -> v.getName().equals(mount.getName())).findFirst().orElseThrow();
                assertTrue(volume.getConfigMap() != null, where + ": " + file.getParent() + " is a ConfigMap");
                ConfigMap map = entry.getValue().stream().filter(o -> o instanceof ConfigMap
                                && o.getMetadata().getName().equals(volume.getConfigMap().getName()))
                        .map(ConfigMap.class::cast).findFirst()
                        .orElseThrow(() -> new AssertionError(where + ": ConfigMap " + volume.getConfigMap().getName() + " is not rendered"));
                assertTrue(map.getData().containsKey(file.getFileName().toString()), where + ": " + file + " is not in the ConfigMap");
                // Generated from the repository's files, never a hand copy.
                for (var data : map.getData().entrySet()) {
                    try {
                        assertEquals(Files.readString(Repo.ROOT.resolve("config").resolve(data.getKey())), data.getValue(),
                                where + ": ConfigMap entry " + data.getKey() + " differs from config/" + data.getKey());
                    } catch (IOException e) {
                        fail("config/" + data.getKey() + ": " + e);
                    }
                }
            }
        }
    }

    @Test
    void securityContextsDropEverythingAndOnlyTheDockerDaemonIsPrivileged() {
        for (var entry : RENDERED.entrySet()) {
            for (var t : templates(entry.getValue()).entrySet()) {
                PodSpec spec = t.getValue().getSpec();
                assertEquals(Boolean.TRUE, spec.getSecurityContext().getRunAsNonRoot(), entry.getKey() + ": " + t.getKey() + " runAsNonRoot");
                for (Container c : allContainers(spec)) {
                    String where = entry.getKey() + ": " + t.getKey() + "/" + c.getName();
                    var sc = c.getSecurityContext();
                    assertTrue(sc != null, where + ": securityContext");
                    if (Boolean.TRUE.equals(sc.getPrivileged())) {
                        assertEquals("docker", c.getName(), where + ": only the Docker daemon sidecar is privileged");
                        assertTrue(c.getImage().startsWith("agentexec/dind:"), where + ": the privileged container is the dind image");
                        continue;
                    }
                    assertEquals(Boolean.FALSE, sc.getAllowPrivilegeEscalation(), where + ": allowPrivilegeEscalation");
                    assertEquals(Boolean.TRUE, sc.getReadOnlyRootFilesystem(), where + ": readOnlyRootFilesystem");
                    assertEquals(List.of("ALL"), sc.getCapabilities().getDrop(), where + ": capabilities dropped");
                    assertTrue(sc.getCapabilities().getAdd() == null || sc.getCapabilities().getAdd().isEmpty(), where + ": none added");
                }
            }
        }
    }

    /**
     * A stopping pod gets terminationGracePeriodSeconds from the kubelet's first step (the preStop hook) to SIGKILL.
     * The node's stop is pekko's coordinated shutdown in NodeShutdown's order: the gateway's drain,
     * whose phase may take the gateway's drain-timeout (AGENTEXEC_DRAIN_TIMEOUT) plus the phase slack; on a pod with
     * the worker role, then the worker's drain, agentexec.cluster.worker.drain-timeout
     * (AGENTEXEC_WORKER_DRAIN_TIMEOUT) plus the slack; then sharding's hand-over and the leave. The grace period must
     * hold all of it after the preStop sleep, or the kubelet kills runs the drain was letting finish.
     */
    @Test
    void drainFitsTheGracePeriodAndRolloutsAndDisruptionsCannotStall() {
        for (var entry : RENDERED.entrySet()) {
            for (var t : templates(entry.getValue()).entrySet()) {
                String where = entry.getKey() + ": " + t.getKey();
                Container node = node(t.getValue(), where);
                List<String> preStop = node.getLifecycle().getPreStop().getExec().getCommand();
                assertEquals("/bin/sleep", preStop.get(0), where + ": preStop");
                long preStopSeconds = Long.parseLong(preStop.get(1));
                long gatewayDrain = drainSeconds(t.getValue(), "AGENTEXEC_DRAIN_TIMEOUT", where);
                boolean worker = List.of(envValue(t.getValue(), "AGENTEXEC_ROLES").orElseThrow().split(",")).contains("worker");
                // Set wherever a worker runs, so that the grace period and the drain it must hold are read together.
                long workerDrain = worker ? drainSeconds(t.getValue(), "AGENTEXEC_WORKER_DRAIN_TIMEOUT", where) : 0;
                long needed = preStopSeconds + gatewayDrain + PHASE_SLACK_SECONDS
                        + (worker ? workerDrain + PHASE_SLACK_SECONDS : 0) + LEAVE_SECONDS;
                long grace = t.getValue().getSpec().getTerminationGracePeriodSeconds();
                assertTrue(grace >= needed, where + ": terminationGracePeriodSeconds " + grace + " < " + needed + " = preStop "
                        + preStopSeconds + " s + gateway drain " + gatewayDrain + " s + " + PHASE_SLACK_SECONDS + " s"
                        + (worker ? " + worker drain " + workerDrain + " s + " + PHASE_SLACK_SECONDS + " s" : "")
                        + " + " + LEAVE_SECONDS + " s to hand over and leave the cluster");
                var affinity = t.getValue().getSpec().getAffinity();
                assertTrue(affinity == null || affinity.getPodAntiAffinity() == null
                                || affinity.getPodAntiAffinity().getRequiredDuringSchedulingIgnoredDuringExecution().isEmpty(),
                        where + ": no required anti-affinity (it stalls rollouts when pods equal nodes)");
                Optional.ofNullable(t.getValue().getSpec().getTopologySpreadConstraints()).orElse(List.of()).forEach(c ->
                        assertEquals("ScheduleAnyway", c.getWhenUnsatisfiable(), where + ": a spread rule must not block scheduling"));
            }
            for (HasMetadata o : entry.getValue()) {
                if (o instanceof Deployment d) {
                    var rolling = d.getSpec().getStrategy().getRollingUpdate();
                    int replicas = Optional.ofNullable(d.getSpec().getReplicas()).orElse(2);
                    boolean surge = rolling.getMaxSurge().getIntVal() != null && rolling.getMaxSurge().getIntVal() >= 1;
                    boolean unavailable = rolling.getMaxUnavailable().getIntVal() != null && rolling.getMaxUnavailable().getIntVal() >= 1;
                    // Progress needs either a pod stopped first (maxUnavailable >= 1) or, for one replica, one surge pod.
                    assertTrue(unavailable || (replicas == 1 && surge), entry.getKey() + ": Deployment " + d.getMetadata().getName()
                            + " rolls with maxSurge " + rolling.getMaxSurge() + " maxUnavailable " + rolling.getMaxUnavailable());
                    PodDisruptionBudget pdb = entry.getValue().stream().filter(p -> p instanceof PodDisruptionBudget b
                                    && d.getSpec().getTemplate().getMetadata().getLabels().entrySet()
                                    .containsAll(b.getSpec().getSelector().getMatchLabels().entrySet()))
                            .map(PodDisruptionBudget.class::cast).findFirst()
                            .orElseThrow(() -> new AssertionError(entry.getKey() + ": no PodDisruptionBudget for " + d.getMetadata().getName()));
                    assertEquals(1, pdb.getSpec().getMaxUnavailable().getIntVal(), entry.getKey() + ": " + pdb.getMetadata().getName()
                            + ": maxUnavailable 1 (never blocks a drain, even with one replica)");
                }
                if (o instanceof DaemonSet ds) {
                    assertEquals(1, ds.getSpec().getUpdateStrategy().getRollingUpdate().getMaxUnavailable().getIntVal(),
                            entry.getKey() + ": DaemonSet rolls one node at a time");
                }
            }
        }
    }

    @Test
    void theAutoscalerScalesTheWorkersOnTheirCapacityMetrics() {
        for (var entry : RENDERED.entrySet()) {
            for (HasMetadata o : entry.getValue()) {
                if (o instanceof HorizontalPodAutoscaler hpa) {
                    var target = hpa.getSpec().getScaleTargetRef();
                    Deployment workers = deployment(entry.getValue(), target.getName());
                    assertEquals("Deployment", target.getKind());
                    assertEquals(Optional.of("worker"), envValue(workers.getSpec().getTemplate(), "AGENTEXEC_ROLES"),
                            entry.getKey() + ": the autoscaler scales the workers");
                    assertEquals(null, workers.getSpec().getReplicas(), entry.getKey()
                            + ": a Deployment the autoscaler owns has no replicas field (re-applying would reset it)");
                    int slots = Integer.parseInt(envValue(workers.getSpec().getTemplate(), "AGENTEXEC_WORKER_SLOTS").orElse(
                            config.getString("agentexec.cluster.worker.slots")));
                    Set<String> metrics = new TreeSet<>();
                    for (var m : hpa.getSpec().getMetrics()) {
                        metrics.add(m.getPods().getMetric().getName());
                        if (m.getPods().getMetric().getName().equals("agentexec_worker_running")) {
                            double average = Double.parseDouble(m.getPods().getTarget().getAverageValue().getAmount());
                            assertTrue(average > 0 && average < slots, entry.getKey() + ": running target " + average
                                    + " must be below the worker's " + slots + " slots, or it never scales out");
                        }
                    }
                    assertTrue(Set.of("agentexec_worker_slots", "agentexec_worker_running", "agentexec_worker_queued")
                            .containsAll(metrics), entry.getKey() + ": metrics " + metrics);
                }
            }
        }
    }

    // ---- helpers

    /** Pods a first `kubectl apply` starts for sure: Deployment replicas (1 without the field); DaemonSets none. */
    private static int initialPods(List<HasMetadata> objects) {
        return objects.stream().filter(o -> o instanceof Deployment).map(Deployment.class::cast)
                .mapToInt(d -> Optional.ofNullable(d.getSpec().getReplicas()).orElse(1)).sum();
    }

    private static <T> T assertInstance(Class<T> type, Object o) {
        assertTrue(type.isInstance(o), o + " is not a " + type.getSimpleName());
        return type.cast(o);
    }

    private static String path(String base, String path) {
        return "/" + (base.isEmpty() ? "" : base + "/") + path;
    }

    /** The paths of the gateway's HTTP API (openapi.yaml is kept equal to its routes by the gateway's own test). */
    private static Set<String> openApiPaths() throws IOException {
        try (InputStream in = ManifestsTest.class.getResourceAsStream("/openapi.yaml")) {
            assertTrue(in != null, "the gateway's openapi.yaml is on the classpath");
            Set<String> paths = new TreeSet<>();
            Matcher m = Pattern.compile("(?m)^  (/[^:\\s]*):\\s*$").matcher(new String(in.readAllBytes(), StandardCharsets.UTF_8));
            while (m.find()) {
                paths.add(m.group(1));
            }
            return paths;
        }
    }

    private static Deployment deployment(List<HasMetadata> objects, String name) {
        return objects.stream().filter(o -> o instanceof Deployment && o.getMetadata().getName().equals(name))
                .map(Deployment.class::cast).findFirst().orElseThrow(() -> new AssertionError("no Deployment " + name));
    }

    /** Pod templates of the Deployments and DaemonSets, by Kind/name. */
    private static Map<String, PodTemplateSpec> templates(List<HasMetadata> objects) {
        Map<String, PodTemplateSpec> templates = new LinkedHashMap<>();
        for (HasMetadata o : objects) {
            if (o instanceof Deployment d) {
                templates.put("Deployment/" + d.getMetadata().getName(), d.getSpec().getTemplate());
            } else if (o instanceof DaemonSet d) {
                templates.put("DaemonSet/" + d.getMetadata().getName(), d.getSpec().getTemplate());
            }
        }
        return templates;
    }

    private static List<Container> allContainers(PodSpec spec) {
        List<Container> all = new ArrayList<>(spec.getInitContainers());
        all.addAll(spec.getContainers());
        return all;
    }

    private static Container node(PodTemplateSpec template, String where) {
        return template.getSpec().getContainers().stream().filter(c -> c.getName().equals("node")).findFirst()
                .orElseThrow(() -> new AssertionError(where + ": no container 'node'"));
    }

    /** The Secret and key a container's variable reads, if it reads one. */
    private static Optional<String> secretRef(Container container, String name) {
        return container.getEnv().stream().filter(e -> e.getName().equals(name))
                .filter(e -> e.getValueFrom() != null && e.getValueFrom().getSecretKeyRef() != null)
                .map(e -> e.getValueFrom().getSecretKeyRef().getName() + "/" + e.getValueFrom().getSecretKeyRef().getKey())
                .findFirst();
    }

    /** A duration variable of the node container, read as the node reads it (HOCON: "60s", "2m", ...), in seconds. */
    private static long drainSeconds(PodTemplateSpec template, String name, String where) {
        String value = envValue(template, name).orElseThrow(() -> new AssertionError(where + ": " + name + " is not set"));
        return ConfigFactory.parseString("d = \"" + value + "\"").getDuration("d").toSeconds();
    }

    private static Optional<String> envValue(PodTemplateSpec template, String name) {
        return template.getSpec().getContainers().stream().filter(c -> c.getName().equals("node"))
                .flatMap(c -> c.getEnv().stream()).filter(e -> e.getName().equals(name)).map(EnvVar::getValue).findFirst();
    }

    /**
     * Fields of a fabric8 model object that the schema does not know: the model keeps them in additionalProperties
     * instead of refusing them. Walks every getter of every model object below {@code value}.
     */
    static void unknownFields(Object value, String path, List<String> unknown) {
        if (value == null) {
            return;
        }
        if (value instanceof Collection<?> list) {
            int i = 0;
            for (Object item : list) {
                unknownFields(item, path + "[" + i++ + "]", unknown);
            }
            return;
        }
        if (value instanceof Map<?, ?> map) {
            map.forEach((k, v) -> unknownFields(v, path + "." + k, unknown));
            return;
        }
        if (!value.getClass().getName().startsWith("io.fabric8.kubernetes.api.model")) {
            return;
        }
        for (Method m : value.getClass().getMethods()) {
            if (m.getParameterCount() != 0 || Modifier.isStatic(m.getModifiers()) || !m.getName().startsWith("get")
                    || m.getDeclaringClass() == Object.class) {
                continue;
            }
            Object child;
            try {
                child = m.invoke(value);
            } catch (ReflectiveOperationException e) {
                continue;
            }
            if (m.getName().equals("getAdditionalProperties")) {
                if (child instanceof Map<?, ?> extra && !extra.isEmpty()) {
                    unknown.add(path + ": " + extra.keySet());
                }
                continue;
            }
            unknownFields(child, path + "." + decapitalize(m.getName().substring(3)), unknown);
        }
    }

    private static String decapitalize(String s) {
        return s.isEmpty() ? s : Character.toLowerCase(s.charAt(0)) + s.substring(1);
    }
}
