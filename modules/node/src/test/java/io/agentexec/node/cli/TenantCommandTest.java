package io.agentexec.node.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.ConfigFactory;
import io.agentexec.cluster.ClusterSettings;
import io.agentexec.gateway.GatewaySettings;
import io.agentexec.gateway.tenant.DatabaseTenants;
import io.agentexec.gateway.tenant.TenantStore;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.DriverManager;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code agentexec tenant create|list|revoke|rotate} against a real database, the embedded H2 file of the
 * single-node default and the local PostgreSQL (a schema of its own): what the command writes is what a gateway
 * node's {@link DatabaseTenants} lets in; keys are stored hashed; revoked and rotated-out keys are refused.
 */
class TenantCommandTest {
    private static final String PG_URL = "jdbc:postgresql://127.0.0.1:5432/agentexec";

    @TempDir
    Path dir;

    record Ran(int exit, String out, String err) {
    }

    static Stream<Arguments> databases() {
        return Stream.of(Arguments.of("h2"), Arguments.of("postgresql"));
    }

    @ParameterizedTest
    @MethodSource("databases")
    void createdKeysWorkAndRotatedOrRevokedOnesAreRefused(String dialect) throws Exception {
        String schema = "agentexec_cli_test_" + UUID.randomUUID().toString().replace("-", "").substring(0, 12);
        Path config = dir.resolve("node.conf");
        String persistence = dialect.equals("h2")
                ? "dialect = h2, url = \"jdbc:h2:file:" + dir.resolve("db") + ";DATABASE_TO_UPPER=false\", user = sa, password = \"\""
                : "dialect = postgresql, url = \"" + PG_URL + "\", user = agentexec, password = agentexec, schema = " + schema;
        Files.writeString(config, "agentexec.cluster.persistence { " + persistence + " }\n");
        try {
            Ran created = cli("tenant", "create", "acme", "--max-live-sandboxes", "3", "--burst", "7", "--config", config.toString());
            assertEquals(0, created.exit(), created.err());
            String key = created.out().trim();
            assertTrue(key.startsWith("aex_"), created.out());

            var settings = ClusterSettings.fromConfig(ConfigFactory.parseFile(config.toFile())
                    .withFallback(ConfigFactory.load()).resolve()).persistence();
            var gateway = GatewaySettings.fromConfig(ConfigFactory.load());
            TenantStore store = new TenantStore(settings);
            var acme = DatabaseTenants.start(store, gateway.tenantDefaults(), Duration.ofMillis(1)).authenticate(key)
                    .orElseThrow(() -> new AssertionError("the created key is not let in"));
            assertEquals("acme", acme.id().value());
            assertEquals(3, acme.policy().maxLiveSandboxes(), "the quota set by the command");
            assertEquals(7, acme.policy().burst());
            assertEquals(gateway.tenantDefaults().requestsPerSecond(), acme.policy().requestsPerSecond(), "the default");
            assertFalse(store.rows().get(0).activeKeySha256().contains(key), "only the hash is stored");

            Ran again = cli("tenant", "create", "acme", "--config", config.toString());
            assertEquals(1, again.exit(), "an existing tenant is refused: " + again.err());
            assertTrue(again.err().contains("already exists"), again.err());

            Ran rotated = cli("tenant", "rotate", "acme", "--config", config.toString());
            assertEquals(0, rotated.exit(), rotated.err());
            String newKey = rotated.out().trim();
            DatabaseTenants tenants = DatabaseTenants.start(store, gateway.tenantDefaults(), Duration.ofMillis(1));
            assertTrue(tenants.authenticate(key).isEmpty(), "the rotated-out key is refused");
            assertTrue(tenants.authenticate(newKey).isPresent(), "the new key is let in");

            Ran list = cli("tenant", "list", "--config", config.toString());
            assertEquals(0, list.exit(), list.err());
            assertTrue(list.out().lines().anyMatch(l -> l.startsWith("acme") && l.contains("active")), list.out());
            assertFalse(list.out().contains(newKey), "list never shows a key");

            Ran revoked = cli("tenant", "revoke", "acme", "--config", config.toString());
            assertEquals(0, revoked.exit(), revoked.err());
            assertTrue(DatabaseTenants.start(store, gateway.tenantDefaults(), Duration.ofMillis(1)).authenticate(newKey).isEmpty(),
                    "the revoked tenant's key is refused");
            assertTrue(cli("tenant", "list", "--config", config.toString()).out().lines()
                    .anyMatch(l -> l.startsWith("acme") && l.contains("revoked")));
            assertEquals(1, cli("tenant", "rotate", "acme", "--config", config.toString()).exit(), "a revoked tenant gets no key");
            assertEquals(1, cli("tenant", "revoke", "nobody", "--config", config.toString()).exit());
            assertEquals(2, cli("tenant", "frobnicate", "--config", config.toString()).exit());
            Ran badQuota = cli("tenant", "create", "zed", "--burst", "0", "--config", config.toString());
            assertEquals(2, badQuota.exit());
            assertTrue(badQuota.err().contains("burst"), badQuota.err());
        } finally {
            if (dialect.equals("postgresql")) {
                try (var c = DriverManager.getConnection(PG_URL, "agentexec", "agentexec"); var s = c.createStatement()) {
                    s.execute("DROP SCHEMA IF EXISTS " + schema + " CASCADE");
                }
            }
        }
    }

    private static Ran cli(String... args) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        int exit = Cli.run(List.of(args), Map.of(), new ByteArrayInputStream(new byte[0]),
                new PrintStream(out, true, StandardCharsets.UTF_8), new PrintStream(err, true, StandardCharsets.UTF_8));
        return new Ran(exit, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
    }
}
