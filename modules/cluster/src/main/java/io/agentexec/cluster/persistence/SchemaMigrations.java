package io.agentexec.cluster.persistence;

import io.agentexec.cluster.ClusterSettings.PersistenceSettings;
import org.flywaydb.core.Flyway;
import org.flywaydb.core.api.output.MigrateResult;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Creates and upgrades the journal's schema with Flyway's versioned migrations before any entity
 * starts. Idempotent: an up-to-date schema is left alone; nodes starting together serialize on
 * Flyway's lock.
 */
public final class SchemaMigrations {
    private static final Logger log = LoggerFactory.getLogger(SchemaMigrations.class);

    private SchemaMigrations() {
    }

    /** Applies the pending migrations and returns how many ran. */
    public static int migrate(PersistenceSettings settings) {
        var configuration = Flyway.configure()
                .dataSource(settings.url(), settings.user(), settings.password())
                .locations(settings.dialect().migrations())
                .createSchemas(true);
        if (!settings.schema().isBlank()) {
            configuration = configuration.schemas(settings.schema());
        }
        MigrateResult result = configuration.load().migrate();
        log.info("journal schema at version {} ({} migration(s) applied) in {}", result.targetSchemaVersion,
                result.migrationsExecuted, settings.dialect());
        return result.migrationsExecuted;
    }
}
