package io.agentexec.sandbox.docker;

import com.github.dockerjava.api.DockerClient;
import com.github.dockerjava.core.DefaultDockerClientConfig;
import com.github.dockerjava.core.DockerClientConfig;
import com.github.dockerjava.core.DockerClientImpl;
import com.github.dockerjava.httpclient5.ApacheDockerHttpClient;
import io.agentexec.sandbox.backend.SandboxUnavailableException;
import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import org.slf4j.LoggerFactory;

/** Clients of the Docker daemon named by {@code DOCKER_HOST} (or the local socket): the one place that makes them. */
public final class DockerClients {
    /** Connections one client keeps: the warm pool's creations, the removals and the sessions' calls at once. */
    private static final int MAX_CONNECTIONS = 64;
    private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(5);
    /** How long one daemon call (a create or start under load) may take. */
    static final Duration RESPONSE_TIMEOUT = Duration.ofSeconds(60);

    private DockerClients() {
    }

    /** A client; nothing is asked of the daemon yet. */
    public static DockerClient create() {
        DockerClientConfig config = config();
        ApacheDockerHttpClient http = new ApacheDockerHttpClient.Builder()
                .dockerHost(config.getDockerHost())
                .sslConfig(config.getSSLConfig())
                .maxConnections(MAX_CONNECTIONS)
                .connectionTimeout(CONNECT_TIMEOUT)
                .responseTimeout(RESPONSE_TIMEOUT)
                .build();
        return DockerClientImpl.getInstance(config, http);
    }

    /** The daemon's address, which the attach streams connect to themselves. */
    public static URI host() {
        return config().getDockerHost();
    }

    /** True when the daemon answers a ping. */
    public static boolean answers(DockerClient client) {
        try {
            client.pingCmd().exec();
            return true;
        } catch (RuntimeException e) {
            return false;
        }
    }

    /** True when the daemon named by {@code DOCKER_HOST} (or the local socket) answers a ping. */
    public static boolean daemonAnswers() {
        DockerClient client = create();
        try {
            return answers(client);
        } finally {
            close(client);
        }
    }

    /** A client whose daemon answered. */
    static DockerClient connect() {
        DockerClient client = create();
        if (!answers(client)) {
            close(client);
            throw new SandboxUnavailableException("the Docker daemon at " + host()
                    + " does not answer (start dockerd, or set DOCKER_HOST)");
        }
        return client;
    }

    /** Closes a client; a failure to close is of no consequence to the caller. */
    static void close(DockerClient client) {
        try {
            client.close();
        } catch (IOException e) {
            LoggerFactory.getLogger(DockerClients.class).debug("closing the Docker client: {}", e.getMessage());
        }
    }

    private static DockerClientConfig config() {
        return DefaultDockerClientConfig.createDefaultConfigBuilder().build();
    }
}
