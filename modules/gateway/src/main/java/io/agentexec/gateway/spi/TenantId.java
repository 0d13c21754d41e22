package io.agentexec.gateway.spi;

import java.util.Objects;
import java.util.regex.Pattern;

/** Who asks. Every id a service hands out or accepts is scoped to one tenant. */
public record TenantId(String value) {
    private static final Pattern SHAPE = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_-]{0,63}");

    public TenantId {
        Objects.requireNonNull(value, "value");
        if (!SHAPE.matcher(value).matches()) {
            throw new IllegalArgumentException("a tenant id is 1 to 64 letters, digits, '_' or '-': '" + value + "'");
        }
    }

    @Override
    public String toString() {
        return value;
    }
}
