package io.agentexec.deploy;

import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/** The repository this module sits in, and the commands the deployment tests run against it. */
final class Repo {
    static final Path ROOT = locate();
    /** The overlays an operator applies (k8s/overlays/*). */
    static final List<String> OVERLAYS = List.of("single-node", "cluster", "cluster-gvisor", "cluster-host-docker");
    static final KubernetesSerialization SERIALIZATION = new KubernetesSerialization();

    private Repo() {
    }

    private static Path locate() {
        Path dir = Path.of(System.getProperty("user.dir")).toAbsolutePath();
        for (Path p = dir; p != null; p = p.getParent()) {
            if (Files.isDirectory(p.resolve("k8s")) && Files.isRegularFile(p.resolve("images/build.sh"))) {
                return p;
            }
        }
        throw new IllegalStateException("no repository root (k8s/ and images/build.sh) above " + dir);
    }

    /** The Maven project version (surefire passes it); the node image's tag. */
    static String version() {
        String v = System.getProperty("agentexec.version");
        if (v == null || v.isBlank()) {
            throw new IllegalStateException("system property agentexec.version is not set (the module's surefire config sets it)");
        }
        return v;
    }

    record Result(int exitCode, String stdout, String stderr) {
    }

    /** Runs a command in the repository root, bounded by {@code timeout}; its output is captured, not inherited. */
    static Result run(Duration timeout, List<String> command) {
        return run(timeout, command, Map.of());
    }

    /** As {@link #run(Duration, List)}, with these variables added to the environment. */
    static Result run(Duration timeout, List<String> command, Map<String, String> environment) {
        ProcessBuilder builder = new ProcessBuilder(command).directory(ROOT.toFile());
        builder.environment().putAll(environment);
        try {
            Process process = builder.start();
            process.getOutputStream().close();
            CompletableFuture<String> out = CompletableFuture.supplyAsync(() -> read(process.getInputStream()));
            CompletableFuture<String> err = CompletableFuture.supplyAsync(() -> read(process.getErrorStream()));
            if (!process.waitFor(timeout.toSeconds(), TimeUnit.SECONDS)) {
                process.descendants().forEach(ProcessHandle::destroyForcibly);
                process.destroyForcibly();
                throw new AssertionError(String.join(" ", command) + " did not finish within " + timeout);
            }
            return new Result(process.exitValue(), out.join(), err.join());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot run " + String.join(" ", command), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    private static String read(InputStream in) {
        try (in) {
            ByteArrayOutputStream buffer = new ByteArrayOutputStream();
            in.transferTo(buffer);
            return buffer.toString(StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "(unreadable: " + e.getMessage() + ")";
        }
    }

    /**
     * {@code scripts/make-certs.sh DIR NODE...}: the cluster's CA, a key store per node, the trust store and the
     * store password in DIR, as an operator makes them. 2048-bit keys: the tests need valid stores, not strong ones.
     */
    static void makeCerts(Path dir, String... nodes) {
        List<String> command = new ArrayList<>(List.of("scripts/make-certs.sh", dir.toString()));
        command.addAll(List.of(nodes));
        Result r = run(Duration.ofMinutes(3), command, Map.of("AGENTEXEC_TLS_KEY_SIZE", "2048"));
        if (r.exitCode() != 0) {
            throw new AssertionError("scripts/make-certs.sh failed (exit " + r.exitCode() + "): " + r.stderr());
        }
    }

    /** kubectl, as scripts/setup.sh installs it (Debian's kubernetes-client), or AGENTEXEC_KUBECTL. */
    static String kubectl() {
        String configured = System.getenv("AGENTEXEC_KUBECTL");
        return configured != null && !configured.isBlank() ? configured : "kubectl";
    }

    /** {@code kubectl kustomize DIR}: the YAML stream an operator would apply. */
    static String kustomize(Path directory) {
        Result r;
        try {
            r = run(Duration.ofMinutes(2), List.of(kubectl(), "kustomize", directory.toString()));
        } catch (UncheckedIOException e) {
            throw new AssertionError("kubectl is missing (scripts/setup.sh installs Debian's kubernetes-client): "
                    + e.getMessage(), e);
        }
        if (r.exitCode() != 0) {
            throw new AssertionError("kubectl kustomize " + ROOT.relativize(directory) + " failed (exit " + r.exitCode()
                    + "): " + r.stderr());
        }
        return r.stdout();
    }

    static String kustomizeOverlay(String overlay) {
        return kustomize(ROOT.resolve("k8s/overlays").resolve(overlay));
    }

    /** Every document of a rendered stream as a typed Kubernetes object (unknown kinds are kept generic). */
    static List<HasMetadata> objects(String yaml) {
        List<HasMetadata> objects = new ArrayList<>();
        for (String document : yaml.split("(?m)^---\\s*$")) {
            if (document.isBlank()) {
                continue;
            }
            objects.add(SERIALIZATION.unmarshal(document, HasMetadata.class));
        }
        return objects;
    }
}
