package io.agentexec.cluster.admin;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.agentexec.cluster.AgentexecCluster;
import io.agentexec.cluster.NodeRole;
import io.agentexec.cluster.NodeShutdown;
import io.agentexec.cluster.worker.ExecutionWorker;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import org.apache.pekko.actor.ActorSystem;
import org.apache.pekko.actor.ExtendedActorSystem;
import org.apache.pekko.http.javadsl.model.ContentTypes;
import org.apache.pekko.http.javadsl.model.HttpEntities;
import org.apache.pekko.http.javadsl.model.HttpResponse;
import org.apache.pekko.http.javadsl.model.StatusCode;
import org.apache.pekko.http.javadsl.model.StatusCodes;
import org.apache.pekko.http.javadsl.model.headers.RawHeader;
import org.apache.pekko.http.javadsl.server.AllDirectives;
import org.apache.pekko.http.javadsl.server.Route;
import org.apache.pekko.management.javadsl.ManagementRouteProvider;
import org.apache.pekko.management.javadsl.ManagementRouteProviderSettings;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's admin routes, on the pekko-management port (registered in reference.conf under
 * {@code pekko.management.http.routes}; the port opens when {@code agentexec.cluster.admin.token} is set, or with
 * Kubernetes bootstrap):
 * <ul>
 *   <li>{@code GET /agentexec/node}: the node, its roles, whether and why it stops, its worker's drain
 *       ({@link ExecutionWorker.DrainReport}) and the steps of its stop so far;</li>
 *   <li>{@code POST /agentexec/drain}: drains this node's worker and stops the node, as SIGTERM does (the gateway
 *       first, then the worker, then it leaves); 202 with the same document; asking again joins the stop.</li>
 * </ul>
 * Both need {@code Authorization: Bearer} the admin token (401 without it or with another, 403 when no token is
 * configured). They ignore {@code route-providers-read-only}, which guards pekko's own unauthenticated routes.
 */
public final class AdminRoutes extends AllDirectives implements ManagementRouteProvider {
    private static final Logger log = LoggerFactory.getLogger(AdminRoutes.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** The node each actor system is, for the routes pekko-management makes by reflection. */
    private static final Map<ActorSystem, AgentexecCluster> NODES = new ConcurrentHashMap<>();

    private final ActorSystem system;

    /** Made by pekko-management. */
    public AdminRoutes(ExtendedActorSystem system) {
        this.system = system;
    }

    /** The routes serve {@code node} (until its actor system terminates). */
    public static void register(AgentexecCluster node) {
        ActorSystem classic = node.system().classicSystem();
        NODES.put(classic, node);
        node.system().getWhenTerminated().thenRun(() -> NODES.remove(classic));
    }

    @Override
    public Route routes(ManagementRouteProviderSettings settings) {
        return pathPrefix("agentexec", () -> concat(
                path("node", () -> get(() -> authorized(() -> completeWithFuture(status(StatusCodes.OK))))),
                path("drain", () -> post(() -> authorized(() -> completeWithFuture(drain()))))));
    }

    private Route authorized(Supplier<Route> inner) {
        return optionalHeaderValueByName("Authorization", header -> {
            Optional<AgentexecCluster> node = Optional.ofNullable(NODES.get(system));
            if (node.isEmpty()) {
                return complete(error(StatusCodes.SERVICE_UNAVAILABLE, "the node is not up"));
            }
            String token = node.get().settings().admin().token();
            if (token.isEmpty()) {
                return complete(error(StatusCodes.FORBIDDEN, "the admin routes are off: set agentexec.cluster.admin.token "
                        + "(AGENTEXEC_ADMIN_TOKEN)"));
            }
            Optional<String> given = header.filter(h -> h.startsWith("Bearer ")).map(h -> h.substring(7).trim());
            if (given.isEmpty() || !MessageDigest.isEqual(sha256(given.get()), sha256(token))) {
                return complete(error(StatusCodes.UNAUTHORIZED, "this route needs Authorization: Bearer the admin token "
                        + "(agentexec.cluster.admin.token)").addHeader(RawHeader.create("WWW-Authenticate",
                        "Bearer realm=\"agentexec-admin\"")));
            }
            return inner.get();
        });
    }

    private CompletionStage<HttpResponse> drain() {
        AgentexecCluster node = NODES.get(system);
        log.info("admin route: drain asked for; node {} drains and stops", node.selfAddress());
        node.drainAndStop();
        return status(StatusCodes.ACCEPTED);
    }

    /** What {@code GET /agentexec/node} answers. */
    private CompletionStage<HttpResponse> status(StatusCode code) {
        AgentexecCluster node = NODES.get(system);
        if (node == null) {
            return CompletableFuture.completedFuture(error(StatusCodes.SERVICE_UNAVAILABLE, "the node has stopped"));
        }
        CompletionStage<Optional<ExecutionWorker.DrainReport>> report = node.drainReport()
                .exceptionally(failure -> Optional.empty());
        return report.thenApply(worker -> {
            ObjectNode root = JSON.createObjectNode();
            root.put("node", node.selfAddress().toString());
            ArrayNode roles = root.putArray("roles");
            node.settings().roles().stream().map(NodeRole::roleName).sorted().forEach(roles::add);
            Optional<String> reason = node.nodeShutdown().reason().map(Object::toString);
            root.put("stopping", reason.isPresent());
            reason.ifPresent(r -> root.put("reason", r));
            worker.ifPresent(w -> {
                ObjectNode drain = root.putObject("worker");
                drain.put("state", w.state().name().toLowerCase(java.util.Locale.ROOT));
                drain.put("running", w.running());
                drain.put("queued", w.queued());
                drain.put("sandboxes", w.sessions());
                drain.put("handedBack", w.handedBack());
                drain.put("sandboxesReleased", w.sandboxesReleased());
                drain.put("elapsedMillis", w.elapsedMillis());
            });
            ArrayNode steps = root.putArray("shutdown");
            for (NodeShutdown.Step step : node.nodeShutdown().steps()) {
                ObjectNode s = steps.addObject();
                s.put("step", step.name());
                s.put("phase", step.phase());
                s.put("started", step.started().toString());
                step.ended().ifPresent(e -> s.put("ended", e.toString()));
                step.failure().ifPresent(f -> s.put("failure", f));
            }
            return json(code, root);
        });
    }

    private static HttpResponse error(StatusCode code, String message) {
        ObjectNode root = JSON.createObjectNode();
        root.putObject("error").put("message", message);
        return json(code, root);
    }

    private static HttpResponse json(StatusCode code, ObjectNode body) {
        return HttpResponse.create().withStatus(code)
                .withEntity(HttpEntities.create(ContentTypes.APPLICATION_JSON, body.toString()));
    }

    private static byte[] sha256(String text) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
