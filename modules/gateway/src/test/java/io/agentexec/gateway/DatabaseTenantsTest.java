package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import io.agentexec.cluster.ClusterSettings;
import io.agentexec.cluster.persistence.SchemaMigrations;
import io.agentexec.gateway.service.ApiException;
import io.agentexec.gateway.spi.TenantId;
import io.agentexec.gateway.tenant.TenantGuard;
import io.agentexec.gateway.tenant.TenantRegistry;
import io.agentexec.gateway.tenant.TenantStore;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cluster backend's tenants in the embedded H2 database of the single-node default (PostgreSQL: TwoGatewayNodesTest
 * and the node's TenantCommandTest): the first start makes one tenant and, stdout not being a terminal here, writes its
 * key to an owner-only file and prints only the path (it used to print the key, into every log collector); a second
 * node on the same database makes none; an old keys file imported at start never brings back a revoked key.
 */
class DatabaseTenantsTest {
    @TempDir
    Path dir;

    @Test
    void firstStartWritesTheKeyOwnerOnlyAndPrintsOnlyWhere() throws Exception {
        Config config = config();
        GatewaySettings settings = GatewaySettings.fromConfig(config);
        var persistence = ClusterSettings.fromConfig(config).persistence();
        SchemaMigrations.migrate(persistence);
        ByteArrayOutputStream console = new ByteArrayOutputStream();
        TenantGuard guard = Gateway.tenantGuard(settings, persistence, () -> 1, new PrintStream(console, true, StandardCharsets.UTF_8));

        Path keyFile = dir.resolve("first-api-key");
        assertTrue(Files.exists(keyFile), "the first key's file");
        assertEquals(PosixFilePermissions.fromString("rw-------"), Files.getPosixFilePermissions(keyFile));
        String key = Files.readString(keyFile).trim();
        String printed = console.toString(StandardCharsets.UTF_8);
        assertTrue(printed.contains(keyFile.toString()), printed);
        assertFalse(printed.contains(key), "the key is not printed when stdout is not a terminal: " + printed);
        assertEquals("default", guard.admit(Optional.of("Bearer " + key)).id().value());

        ByteArrayOutputStream second = new ByteArrayOutputStream();
        Files.delete(keyFile);
        TenantGuard other = Gateway.tenantGuard(settings, persistence, () -> 1, new PrintStream(second, true, StandardCharsets.UTF_8));
        assertEquals("", second.toString(StandardCharsets.UTF_8), "a second node makes no other first tenant");
        assertFalse(Files.exists(keyFile));
        assertEquals("default", other.admit(Optional.of("Bearer " + key)).id().value(), "the same keys on the second node");
    }

    @Test
    void anImportedKeysFileNeverBringsBackARevokedKey() throws Exception {
        String key = TenantRegistry.newKey();
        Path keys = dir.resolve("keys.json");
        Files.writeString(keys, "{\"tenants\": [{\"id\": \"olga\", \"keySha256\": [\"" + TenantRegistry.sha256(key)
                + "\"], \"maxLiveSandboxes\": 2}]}");
        Config config = ConfigFactory.parseMap(Map.of("agentexec.gateway.auth.keys-file", keys.toString())).withFallback(config());
        GatewaySettings settings = GatewaySettings.fromConfig(config);
        var persistence = ClusterSettings.fromConfig(config).persistence();
        SchemaMigrations.migrate(persistence);
        PrintStream console = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);

        var olga = Gateway.tenantGuard(settings, persistence, () -> 1, console).admit(Optional.of("Bearer " + key));
        assertEquals(2, olga.policy().maxLiveSandboxes(), "the file's quota came with it");
        assertFalse(Files.exists(dir.resolve("first-api-key")), "a tenant was imported: no first tenant is made");

        new TenantStore(persistence).revoke(new TenantId("olga"), System.currentTimeMillis());
        TenantGuard restarted = Gateway.tenantGuard(settings, persistence, () -> 1, console);
        ApiException refused = org.junit.jupiter.api.Assertions.assertThrows(ApiException.class,
                () -> restarted.admit(Optional.of("Bearer " + key)));
        assertEquals(401, refused.status());
    }

    private Config config() {
        return ConfigFactory.parseMap(Map.of(
                        "agentexec.cluster.persistence.url", "jdbc:h2:file:" + dir.resolve("db") + ";DATABASE_TO_UPPER=false",
                        "agentexec.gateway.auth.keys-file", dir.resolve("no-keys.json").toString(),
                        "agentexec.gateway.auth.first-key-file", dir.resolve("first-api-key").toString()))
                .withFallback(ConfigFactory.load()).resolve();
    }
}
