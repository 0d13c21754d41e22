package io.agentexec.gateway.service;

import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * A request the gateway answers with an error: a status, a stable code for programs and a message
 * for people. The status is the HTTP one; gRPC maps it to its own code (one table, in GrpcApi). Every
 * HTTP error leaves the gateway as {@code {"error": {"code", "message", "requestId"}}}.
 */
public final class ApiException extends RuntimeException {
    /** How long a client should wait after an overload, a node shutting down or a cluster that did not answer. */
    public static final Duration RETRY_AFTER = Duration.ofSeconds(1);

    private final int status;
    private final String code;
    private final Optional<Duration> retryAfter;
    private final List<String> allow;

    public ApiException(int status, String code, String message) {
        this(status, code, message, Optional.empty(), List.of());
    }

    private ApiException(int status, String code, String message, Optional<Duration> retryAfter, List<String> allow) {
        super(Objects.requireNonNull(message, "message"), null, false, false);
        this.status = status;
        this.code = Objects.requireNonNull(code, "code");
        this.retryAfter = retryAfter;
        this.allow = List.copyOf(allow);
    }

    public static ApiException badRequest(String message) {
        return new ApiException(400, "invalid_request", message);
    }

    public static ApiException notFound(String message) {
        return new ApiException(404, "not_found", message);
    }

    public static ApiException tooManyRequests(String code, String message, Duration retryAfter) {
        return new ApiException(429, code, message, Optional.of(retryAfter), List.of());
    }

    public static ApiException unavailable(String code, String message, Duration retryAfter) {
        return new ApiException(503, code, message, Optional.of(retryAfter), List.of());
    }

    public static ApiException methodNotAllowed(String method, List<String> allow) {
        return new ApiException(405, "method_not_allowed", "method " + method + " is not allowed here; allowed: "
                + String.join(", ", allow), Optional.empty(), allow);
    }

    /** A sandbox quota held to its maximum: 429 with when to try again. */
    public static ApiException of(io.agentexec.cluster.port.QuotaExceededException e) {
        return tooManyRequests("sandbox_quota", e.getMessage(), e.retryAfter());
    }

    /** A sandbox file problem as the protocols answer it: 404, 413 or 503. */
    public static ApiException of(io.agentexec.cluster.port.SandboxFileError e) {
        return switch (e.kind()) {
            case NOT_FOUND -> notFound(e.getMessage());
            case TOO_LARGE -> new ApiException(413, "file_too_large", e.getMessage());
            case UNAVAILABLE -> unavailable("unavailable", e.getMessage(), RETRY_AFTER);
        };
    }

    /**
     * The refusal a failure of the machinery behind the service is answered with, for both transports: bad input,
     * a quota, a file problem, a cluster that did not answer, a feature this node lacks. Empty for anything else
     * (a bug: the transport answers "internal error" and logs it).
     */
    public static Optional<ApiException> of(Throwable failure) {
        Throwable e = unwrap(failure);
        if (e instanceof ApiException api) {
            return Optional.of(api);
        }
        if (e instanceof io.agentexec.cluster.port.SandboxFileError file) {
            return Optional.of(of(file));
        }
        if (e instanceof io.agentexec.cluster.port.QuotaExceededException quota) {
            return Optional.of(of(quota));
        }
        if (e instanceof io.agentexec.sandbox.model.InvalidRequestException invalid) {
            return Optional.of(badRequest(invalid.getMessage()));
        }
        if (e instanceof UnsupportedOperationException unsupported) {
            return Optional.of(new ApiException(501, "not_implemented", unsupported.getMessage()));
        }
        if (e instanceof java.util.concurrent.TimeoutException) {
            // an ask to the cluster (an entity or a node) that got no answer: try again, maybe elsewhere
            return Optional.of(unavailable("unavailable", "the cluster did not answer in time", RETRY_AFTER));
        }
        return Optional.empty();
    }

    /** The failure inside the wrappers of futures. */
    public static Throwable unwrap(Throwable failure) {
        Throwable e = failure;
        while ((e instanceof java.util.concurrent.CompletionException || e instanceof java.util.concurrent.ExecutionException)
                && e.getCause() != null) {
            e = e.getCause();
        }
        return e;
    }

    public int status() {
        return status;
    }

    public String code() {
        return code;
    }

    public Optional<Duration> retryAfter() {
        return retryAfter;
    }

    public List<String> allow() {
        return allow;
    }
}
