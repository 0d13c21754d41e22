package io.agentexec.deploy;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The node image as `images/build.sh agentexec-node` builds it (offline: debootstrap + docker import/commit), started
 * with `docker run` the way a pod runs it (non-root, read-only root, no capabilities, a memory limit), reaches
 * /healthz; its metrics are on their own port, beyond loopback only with the metrics token; its image loader puts a
 * `docker save` tarball into a real daemon.
 *
 * <p>Cost: the first build on a machine debootstraps a JRE (about 2 minutes here, cached as agentexec/node-base
 * afterwards), then each build copies the assembly and `docker save`s the sandbox images (about 15 s); a build whose
 * inputs did not change is skipped. Skipped, with the reason printed, only when Docker is missing.
 */
class NodeImageTest {
    private static final Duration BUILD_TIMEOUT = Duration.ofMinutes(25);
    private static final Duration WAIT = Duration.ofMinutes(3);
    /** As the agentexec-metrics Secret gives it (AGENTEXEC_METRICS_TOKEN): a listener beyond loopback requires one. */
    private static final String METRICS_TOKEN = "node-image-test-metrics-token";
    private static String image;
    private final List<String> containers = new ArrayList<>();
    private final List<String> tags = new ArrayList<>();
    private final List<String> networks = new ArrayList<>();
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

    @BeforeAll
    static void build() {
        Repo.Result docker;
        try {
            docker = Repo.run(Duration.ofSeconds(60), List.of("docker", "version", "--format", "{{.Server.Version}}"));
        } catch (RuntimeException e) {
            docker = new Repo.Result(-1, "", e.getMessage());
        }
        Skips.assumeTrue(docker.exitCode() == 0,
                "SKIPPED: Docker is missing (docker version: " + docker.stderr().strip() + "); the node image cannot be built");
        long started = System.nanoTime();
        Repo.Result r = Repo.run(BUILD_TIMEOUT, List.of("images/build.sh", "agentexec-node"));
        System.out.println("[NodeImageTest] images/build.sh agentexec-node (" + Duration.ofNanos(System.nanoTime() - started).toSeconds()
                + " s):\n" + r.stdout() + r.stderr());
        assertEquals(0, r.exitCode(), "images/build.sh agentexec-node failed: " + r.stderr());
        image = "agentexec/node:" + Repo.version();
    }

    @AfterEach
    void remove() {
        for (String c : containers) {
            Repo.run(Duration.ofMinutes(1), List.of("docker", "rm", "-f", c));
        }
        for (String t : tags) {
            Repo.run(Duration.ofMinutes(1), List.of("docker", "rmi", t));
        }
        for (String n : networks) {
            Repo.run(Duration.ofMinutes(1), List.of("docker", "network", "rm", n));
        }
    }

    private static String docker(String... args) {
        List<String> command = new ArrayList<>(List.of("docker"));
        command.addAll(List.of(args));
        Repo.Result r = Repo.run(Duration.ofMinutes(5), command);
        assertEquals(0, r.exitCode(), String.join(" ", command) + ": " + r.stderr());
        return r.stdout().strip();
    }

    @Test
    void theImageIsTaggedWithTheVersionRunsAsItsOwnUserAndItsEntryPointHasTheNodesCommands() {
        assertEquals(Repo.version(), docker("image", "inspect", "-f", "{{index .Config.Labels \"io.agentexec.version\"}}", image));
        assertFalse(docker("image", "inspect", "-f", "{{index .Config.Labels \"io.agentexec.commit\"}}", image).isBlank(),
                "the git commit is a label");
        assertEquals("10001:10001", docker("image", "inspect", "-f", "{{.Config.User}}", image));
        assertTrue(docker("image", "inspect", "-f", "{{json .Config.Entrypoint}}", image).contains("/usr/bin/tini"),
                "tini is pid 1");
        String help = docker("run", "--rm", "--network", "none", image, "--help");
        assertTrue(help.contains("serve") && help.contains("exec"), help);
    }

    @Test
    void aNodeStartedFromTheImageLikeAPodAnswersHealthzAndServesMetricsOnTheirOwnPort() throws Exception {
        String name = "agentexec-deploytest-" + UUID.randomUUID();
        // A bridge network of the test's own (as a pod has its own network namespace): nothing else's containers
        // beside it, and no reliance on the daemon's default bridge (docker0), which the machine may not have.
        docker("network", "create", name);
        networks.add(name);
        containers.add(name);
        // As the manifests run it: read-only root with emptyDirs for /tmp and the working directory, no capabilities,
        // a memory limit for MaxRAMPercentage. The gateway role alone: no Docker daemon inside this container.
        docker("run", "-d", "--name", name, "--network", name, "--memory", "1g", "--read-only",
                "--tmpfs", "/tmp:rw,size=256m", "--tmpfs", "/var/lib/agentexec:rw,size=64m,uid=10001,gid=10001",
                "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
                "-e", "AGENTEXEC_ROLES=gateway", "-e", "AGENTEXEC_GATEWAY_HOST=0.0.0.0",
                "-e", "AGENTEXEC_METRICS_HOST=0.0.0.0", "-e", "AGENTEXEC_METRICS_PORT=9464",
                "-e", "AGENTEXEC_METRICS_TOKEN=" + METRICS_TOKEN,
                "-p", "127.0.0.1::8080", "-p", "127.0.0.1::9464", image, "serve");
        String api = "http://" + docker("port", name, "8080").lines().findFirst().orElseThrow();
        String metrics = "http://" + docker("port", name, "9464").lines().findFirst().orElseThrow();

        HttpResponse<String> health = awaitAnswer(URI.create(api + "/healthz"), name);
        assertEquals(200, health.statusCode(), health.body());
        assertTrue(health.body().contains("\"ok\""), health.body());

        // Beyond loopback (as on the pod IP) the metrics need the token, on their port and on the API port alike.
        HttpResponse<String> scraped = get(URI.create(metrics + "/metrics"), METRICS_TOKEN);
        assertEquals(200, scraped.statusCode(), "metrics port: " + scraped.body());
        assertTrue(scraped.body().contains("agentexec_"), scraped.body());
        assertEquals(401, get(URI.create(metrics + "/metrics")).statusCode(), "the metrics port without the token");
        assertEquals(401, get(URI.create(metrics + "/metrics"), "not-the-metrics-token-at-all").statusCode(),
                "the metrics port with another token");
        assertEquals(401, get(URI.create(api + "/metrics")).statusCode(), "/metrics on the API port without the token");
        assertEquals(404, get(URI.create(metrics + "/healthz"), METRICS_TOKEN).statusCode(), "the metrics port serves /metrics only");

        assertEquals("10001", docker("exec", name, "id", "-u"));
        String java = docker("exec", name, "sh", "-c",
                "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep AgentexecMain || true");
        assertTrue(java.contains("-XX:MaxRAMPercentage="), "the heap is a share of the limit: " + java);
        assertFalse(java.contains("-Xmx"), "no fixed heap: " + java);
    }

    @Test
    void loadImagesPutsATarballIntoTheDaemonThenFindsItPresentAndFailsWithoutADaemon() throws Exception {
        String tag = "agentexec-deploytest/loaded:" + UUID.randomUUID().toString().substring(0, 8);
        String source = "agentexec/shell:bookworm";
        assertEquals(0, Repo.run(Duration.ofMinutes(1), List.of("docker", "image", "inspect", source)).exitCode(),
                source + " is missing (scripts/setup.sh builds it)");
        Path dir = Files.createTempDirectory(Path.of("/tmp"), "agentexec-deploytest-images",
                PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwxr-xr-x")));
        try {
            docker("tag", source, tag);
            tags.add(tag);
            docker("save", "-o", dir.resolve("loaded.tar").toString(), tag);
            docker("rmi", tag);
            Files.setPosixFilePermissions(dir.resolve("loaded.tar"), PosixFilePermissions.fromString("rw-r--r--"));
            Files.writeString(dir.resolve("IMAGES"), tag + " " + docker("image", "inspect", "-f", "{{.Id}}", source) + "\n");
            assertFalse(Repo.run(Duration.ofMinutes(1), List.of("docker", "image", "inspect", tag)).exitCode() == 0);

            // As the host-daemon DaemonSet runs it: the node's user, in the socket's group, the host's socket mounted.
            String gid = Files.getAttribute(Path.of("/var/run/docker.sock"), "unix:gid").toString();
            List<String> run = List.of("run", "--rm", "--network", "none", "--group-add", gid,
                    "-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", dir + ":/images:ro",
                    "-e", "AGENTEXEC_IMAGES_DIR=/images", "-e", "DOCKER_HOST=unix:///var/run/docker.sock", image, "load-images");
            String first = docker(run.toArray(String[]::new));
            assertTrue(first.contains("loading " + tag) && first.contains(tag + " loaded"), first);
            docker("image", "inspect", tag);
            String second = docker(run.toArray(String[]::new));
            assertTrue(second.contains(tag + " is present"), second);

            Repo.Result none = Repo.run(Duration.ofMinutes(2), List.of("docker", "run", "--rm", "--network", "none",
                    "-e", "DOCKER_HOST=unix:///run/no-such-daemon.sock", "-e", "AGENTEXEC_DOCKER_WAIT_SECONDS=2",
                    image, "load-images"));
            assertEquals(1, none.exitCode(), none.stdout() + none.stderr());
            assertTrue(none.stderr().contains("did not answer within 2 s"), none.stderr());
        } finally {
            try (var files = Files.list(dir)) {
                for (Path p : files.toList()) {
                    Files.delete(p);
                }
            }
            Files.delete(dir);
        }
    }

    private HttpResponse<String> get(URI uri) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> get(URI uri, String bearer) throws IOException, InterruptedException {
        return http.send(HttpRequest.newBuilder(uri).timeout(Duration.ofSeconds(10)).header("Authorization", "Bearer " + bearer)
                .build(), HttpResponse.BodyHandlers.ofString());
    }

    private HttpResponse<String> awaitAnswer(URI uri, String container) throws InterruptedException {
        long deadline = System.nanoTime() + WAIT.toNanos();
        IOException last = null;
        while (System.nanoTime() < deadline) {
            try {
                return get(uri);
            } catch (IOException e) {
                last = e;
            }
            String state = Repo.run(Duration.ofMinutes(1), List.of("docker", "inspect", "-f", "{{.State.Status}}", container)).stdout().strip();
            if (!state.equals("running")) {
                throw new AssertionError("the node container stopped (" + state + "): "
                        + Repo.run(Duration.ofMinutes(1), List.of("docker", "logs", "--tail", "40", container)));
            }
            Thread.sleep(500);
        }
        throw new AssertionError(uri + " did not answer within " + WAIT + ": " + last + "\n"
                + Repo.run(Duration.ofMinutes(1), List.of("docker", "logs", "--tail", "40", container)));
    }
}
