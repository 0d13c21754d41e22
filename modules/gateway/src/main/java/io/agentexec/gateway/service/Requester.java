package io.agentexec.gateway.service;

import io.agentexec.gateway.tenant.Tenant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.UUID;
import java.util.regex.Pattern;

/** An admitted request: the tenant asking and the request's id (on its log lines and in its error documents). */
public record Requester(String requestId, Tenant tenant) {
    /** A client's own request id is kept when it is a short token; anything else gets a fresh one. */
    private static final Pattern REQUEST_ID = Pattern.compile("[A-Za-z0-9._-]{1,64}");

    public Requester {
        Objects.requireNonNull(requestId, "requestId");
        Objects.requireNonNull(tenant, "tenant");
    }

    /** The id of a request whose client sent {@code given} (HTTP's X-Request-Id, gRPC's x-request-id). */
    public static String requestId(Optional<String> given) {
        return given.filter(v -> REQUEST_ID.matcher(v).matches()).orElseGet(() -> "req-" + UUID.randomUUID());
    }

    /** The ids its log lines carry; a caller may add more (the execution's). */
    public Map<String, String> logIds() {
        Map<String, String> ids = new LinkedHashMap<>();
        ids.put("requestId", requestId);
        ids.put("tenant", tenant.id().value());
        return ids;
    }
}
