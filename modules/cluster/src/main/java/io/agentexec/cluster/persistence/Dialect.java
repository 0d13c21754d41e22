package io.agentexec.cluster.persistence;

import java.util.Locale;

/** The databases the journal may live in, with what Slick and Flyway need to know of each. */
public enum Dialect {
    H2("org.h2.Driver", "slick.jdbc.H2Profile$", "classpath:db/migration/h2"),
    POSTGRESQL("org.postgresql.Driver", "slick.jdbc.PostgresProfile$", "classpath:db/migration/postgresql");

    private final String driver;
    private final String slickProfile;
    private final String migrations;

    Dialect(String driver, String slickProfile, String migrations) {
        this.driver = driver;
        this.slickProfile = slickProfile;
        this.migrations = migrations;
    }

    public String driver() {
        return driver;
    }

    public String slickProfile() {
        return slickProfile;
    }

    /** Flyway location of this dialect's versioned migrations. */
    public String migrations() {
        return migrations;
    }

    public static Dialect parse(String text) {
        return switch (text.trim().toLowerCase(Locale.ROOT)) {
            case "h2" -> H2;
            case "postgresql", "postgres" -> POSTGRESQL;
            default -> throw new IllegalArgumentException(
                    "unknown agentexec.cluster.persistence.dialect '" + text + "' (h2, postgresql)");
        };
    }
}
