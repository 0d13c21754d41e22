package io.agentexec.gateway.tenant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.agentexec.gateway.spi.TenantId;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * Tenants and their API keys, read from a JSON file that stores only the SHA-256 of each key.
 * Keys are 32 random bytes, so a fast hash suffices (there is nothing to brute-force).
 *
 * <pre>{"tenants": [{"id": "acme", "keySha256": ["hex", ...], "maxLiveSandboxes": 4, "requestsPerSecond": 10, "burst": 20}]}</pre>
 */
public final class TenantRegistry implements TenantDirectory {
    public static final String KEY_PREFIX = "aex_";
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final ObjectMapper JSON = new ObjectMapper();

    private final Map<String, Tenant> byKeyHash;

    private TenantRegistry(Map<String, Tenant> byKeyHash) {
        this.byKeyHash = Map.copyOf(byKeyHash);
    }

    /** The tenants of these key hashes (lower-case hex SHA-256), as read from the database. */
    static TenantRegistry of(Map<String, Tenant> byKeyHash) {
        return new TenantRegistry(byKeyHash);
    }

    /** The tenant holding this key, when it is one. */
    @Override
    public Optional<Tenant> authenticate(String apiKey) {
        return Optional.ofNullable(byKeyHash.get(sha256(apiKey)));
    }

    /** The tenant with this id, when one holds a key. */
    @Override
    public Optional<Tenant> tenant(TenantId id) {
        return byKeyHash.values().stream().filter(t -> t.id().equals(id)).findFirst();
    }

    public int tenantCount() {
        return (int) byKeyHash.values().stream().map(Tenant::id).distinct().count();
    }

    public static TenantRegistry load(Path file, TenantPolicy defaults) {
        if (!Files.exists(file)) {
            return new TenantRegistry(Map.of());
        }
        try {
            JsonNode root = JSON.readTree(file.toFile());
            Map<String, Tenant> map = new LinkedHashMap<>();
            for (JsonNode t : root.path("tenants")) {
                TenantId id = new TenantId(t.path("id").asText());
                TenantPolicy policy = new TenantPolicy(
                        t.path("maxLiveSandboxes").asInt(defaults.maxLiveSandboxes()),
                        t.path("requestsPerSecond").asDouble(defaults.requestsPerSecond()),
                        t.path("burst").asInt(defaults.burst()),
                        defaults.execution());
                for (JsonNode hash : t.path("keySha256")) {
                    map.put(hash.asText().toLowerCase(java.util.Locale.ROOT), new Tenant(id, policy));
                }
            }
            return new TenantRegistry(map);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the keys file " + file, e);
        }
    }

    /**
     * What a keys file holds, for an import into the database: each tenant's own quotas (absent: the defaults) and
     * the tenant of each key hash. A missing file holds nothing.
     */
    public record FileContents(Map<TenantId, TenantStore.Quotas> tenants, Map<String, TenantId> keyHashes) {
    }

    public static FileContents read(Path file) {
        Map<TenantId, TenantStore.Quotas> tenants = new LinkedHashMap<>();
        Map<String, TenantId> keys = new LinkedHashMap<>();
        if (!Files.exists(file)) {
            return new FileContents(tenants, keys);
        }
        try {
            for (JsonNode t : JSON.readTree(file.toFile()).path("tenants")) {
                TenantId id = new TenantId(t.path("id").asText());
                tenants.put(id, new TenantStore.Quotas(
                        t.hasNonNull("maxLiveSandboxes") ? java.util.OptionalInt.of(t.get("maxLiveSandboxes").asInt())
                                : java.util.OptionalInt.empty(),
                        t.hasNonNull("requestsPerSecond") ? java.util.OptionalDouble.of(t.get("requestsPerSecond").asDouble())
                                : java.util.OptionalDouble.empty(),
                        t.hasNonNull("burst") ? java.util.OptionalInt.of(t.get("burst").asInt()) : java.util.OptionalInt.empty()));
                for (JsonNode hash : t.path("keySha256")) {
                    keys.put(hash.asText().toLowerCase(java.util.Locale.ROOT), id);
                }
            }
            return new FileContents(tenants, keys);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read the keys file " + file, e);
        }
    }

    /** Adds a tenant with a fresh key to the file (created owner-only) and returns the key: shown once, never stored. */
    public static String addTenant(Path file, TenantId tenant) {
        String key = newKey();
        try {
            ObjectNode root = Files.exists(file) ? (ObjectNode) JSON.readTree(file.toFile()) : JSON.createObjectNode();
            ArrayNode tenants = root.withArray("tenants");
            ObjectNode entry = tenants.addObject();
            entry.put("id", tenant.value());
            entry.putArray("keySha256").add(sha256(key));
            Path parent = file.toAbsolutePath().getParent();
            Files.createDirectories(parent);
            Path tmp = Files.createTempFile(parent, ".keys", ".json",
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
            Files.writeString(tmp, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root), StandardCharsets.UTF_8);
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
            return key;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the keys file " + file, e);
        }
    }

    public static String newKey() {
        byte[] bytes = new byte[32];
        RANDOM.nextBytes(bytes);
        return KEY_PREFIX + Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
    }

    public static String sha256(String key) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(key.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
