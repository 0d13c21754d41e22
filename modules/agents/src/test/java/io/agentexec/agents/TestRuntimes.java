package io.agentexec.agents;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.util.UUID;
import io.agentexec.testkit.FakeModel;

/** Configurations of real nodes for tests: loopback only, an ephemeral port, a database of their own. */
final class TestRuntimes {
    private TestRuntimes() {
    }

    /** A node on a private in-memory H2 database. */
    static Config h2() {
        return base("""
                agentexec.cluster.persistence.dialect = h2
                agentexec.cluster.persistence.url = "jdbc:h2:mem:agents-%s;DB_CLOSE_DELAY=-1;DATABASE_TO_UPPER=false"
                agentexec.cluster.persistence.user = sa
                agentexec.cluster.persistence.password = ""
                """.formatted(UUID.randomUUID()));
    }

    /** A node on the local PostgreSQL, in {@code schema} (created if missing). */
    static Config postgres(String schema) {
        return base("""
                agentexec.cluster.persistence.dialect = postgresql
                agentexec.cluster.persistence.url = "jdbc:postgresql://127.0.0.1:5432/agentexec"
                agentexec.cluster.persistence.user = agentexec
                agentexec.cluster.persistence.password = agentexec
                agentexec.cluster.persistence.schema = "%s"
                """.formatted(schema));
    }

    private static Config base(String persistence) {
        return ConfigFactory.load(ConfigFactory.parseString(persistence + """
                pekko.remote.artery.canonical.hostname = "127.0.0.1"
                pekko.remote.artery.canonical.port = 0
                pekko.coordinated-shutdown.run-by-jvm-shutdown-hook = off
                agentexec.sandbox.docker.warm-pool.size = 0
                agentexec.agents.llm.retry.min-backoff = 20ms
                agentexec.agents.llm.retry.max-backoff = 100ms
                # an image the policy lets through but no worker has: how a sandbox error is made on purpose
                agentexec.policy.allowed-images = ["agentexec/datascience:bookworm", "agentexec/polyglot:bookworm", "agentexec/does-not-exist:1"]
                """));
    }

    static LlmConfig llm(FakeModel server) {
        return LlmConfig.openAi(server.baseUrl(), "fake-model", "AGENTEXEC_TEST_LLM_KEY", 0.0,
                java.time.Duration.ofSeconds(30));
    }
}
