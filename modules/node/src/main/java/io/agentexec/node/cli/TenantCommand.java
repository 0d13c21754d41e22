package io.agentexec.node.cli;

import com.typesafe.config.Config;
import io.agentexec.cluster.ClusterSettings;
import io.agentexec.cluster.persistence.SchemaMigrations;
import io.agentexec.gateway.spi.TenantId;
import io.agentexec.gateway.tenant.TenantStore;
import io.agentexec.node.NodeConfig;
import java.io.PrintStream;
import java.sql.SQLException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalDouble;
import java.util.OptionalInt;

/**
 * {@code agentexec tenant create|list|revoke|rotate}: the operator's commands on the cluster's tenants and API keys,
 * run against the database named by the node's configuration ({@code agentexec.cluster.persistence}, the same file
 * and variables as {@code serve}; the schema is migrated first). Every gateway node reads them within its
 * {@code agentexec.gateway.auth.refresh-interval}. A new key is printed once, on standard output, and never stored.
 */
final class TenantCommand {
    static final String USAGE = """
            usage: agentexec tenant create NAME [--max-live-sandboxes N] [--requests-per-second R] [--burst B] [--config FILE]
                   agentexec tenant list [--config FILE]
                   agentexec tenant revoke NAME [--config FILE]     revoke the tenant and every key it holds
                   agentexec tenant rotate NAME [--config FILE]     a new key; the tenant's other keys are revoked
              the database is the node configuration's agentexec.cluster.persistence (AGENTEXEC_DB_* variables);
              every gateway node sees a change within agentexec.gateway.auth.refresh-interval (2 s by default).
              create and rotate print the new key once on standard output: it is stored hashed only.""";

    private TenantCommand() {
    }

    static int run(List<String> given, Map<String, String> env, PrintStream out, PrintStream err) {
        List<String> args = new ArrayList<>(given);
        Config config = NodeConfig.load(Cli.takeConfig(args), env);
        if (args.isEmpty()) {
            throw new UsageException("tenant needs a subcommand: create, list, revoke or rotate\n" + USAGE);
        }
        String sub = args.remove(0);
        ClusterSettings.PersistenceSettings database;
        try {
            database = ClusterSettings.fromConfig(config).persistence();
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
        TenantStore store = new TenantStore(database);
        try {
            SchemaMigrations.migrate(database);
            long now = System.currentTimeMillis();
            switch (sub) {
                case "create", "add" -> {
                    TenantId id = tenantId(args);
                    TenantStore.Quotas quotas = quotas(args);
                    noneLeft(args);
                    out.println(store.create(id, quotas, now));
                }
                case "rotate" -> {
                    TenantId id = tenantId(args);
                    noneLeft(args);
                    out.println(store.rotate(id, now));
                }
                case "revoke" -> {
                    TenantId id = tenantId(args);
                    noneLeft(args);
                    store.revoke(id, now);
                    err.println("agentexec: tenant '" + id + "' and its keys are revoked");
                }
                case "list" -> {
                    noneLeft(args);
                    out.printf("%-24s %-8s %5s %18s %20s %6s  %s%n", "TENANT", "STATE", "KEYS", "MAX-LIVE-SANDBOXES",
                            "REQUESTS-PER-SECOND", "BURST", "CREATED");
                    for (TenantStore.Row r : store.rows()) {
                        out.printf("%-24s %-8s %5d %18s %20s %6s  %s%n", r.id(), r.revoked() ? "revoked" : "active",
                                r.activeKeySha256().size(),
                                r.maxLiveSandboxes().isPresent() ? String.valueOf(r.maxLiveSandboxes().getAsInt()) : "default",
                                r.requestsPerSecond().isPresent() ? String.valueOf(r.requestsPerSecond().getAsDouble()) : "default",
                                r.burst().isPresent() ? String.valueOf(r.burst().getAsInt()) : "default",
                                Instant.ofEpochMilli(r.createdAtMillis()));
                    }
                }
                default -> throw new UsageException("unknown tenant subcommand '" + sub + "'\n" + USAGE);
            }
            return Exit.OK.code();
        } catch (TenantStore.TenantException e) {
            err.println("agentexec: " + e.getMessage());
            return Exit.FAILED.code();
        } catch (SQLException | org.flywaydb.core.api.FlywayException e) {
            err.println("agentexec: the database (agentexec.cluster.persistence) is unavailable: " + e.getMessage());
            return Exit.UNAVAILABLE.code();
        }
    }

    private static TenantId tenantId(List<String> args) {
        if (args.isEmpty() || args.get(0).startsWith("--")) {
            throw new UsageException("the tenant's NAME is missing\n" + USAGE);
        }
        try {
            return new TenantId(args.remove(0));
        } catch (IllegalArgumentException e) {
            throw new UsageException("NAME: " + e.getMessage());
        }
    }

    private static TenantStore.Quotas quotas(List<String> args) {
        try {
            String max = option(args, "--max-live-sandboxes");
            String rate = option(args, "--requests-per-second");
            String burst = option(args, "--burst");
            return new TenantStore.Quotas(
                    max == null ? OptionalInt.empty() : OptionalInt.of(Integer.parseInt(max)),
                    rate == null ? OptionalDouble.empty() : OptionalDouble.of(Double.parseDouble(rate)),
                    burst == null ? OptionalInt.empty() : OptionalInt.of(Integer.parseInt(burst)));
        } catch (NumberFormatException e) {
            throw new UsageException("a quota is not a number: " + e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new UsageException(e.getMessage());
        }
    }

    private static String option(List<String> args, String name) {
        int i = args.indexOf(name);
        if (i < 0) {
            return null;
        }
        if (i + 1 >= args.size()) {
            throw new UsageException(name + " needs a value");
        }
        String value = args.remove(i + 1);
        args.remove(i);
        return value;
    }

    private static void noneLeft(List<String> args) {
        if (!args.isEmpty()) {
            throw new UsageException("unexpected argument(s) " + args + "\n" + USAGE);
        }
    }
}
