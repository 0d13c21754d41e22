package io.agentexec.gateway;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.agentexec.gateway.http.HttpApi;
import java.util.Iterator;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/** openapi.yaml and the route table describe the same operations, and the node serves that file. */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class OpenApiContractTest {
    private static final Set<String> HTTP_METHODS = Set.of("get", "put", "post", "delete", "patch", "head", "options");
    private TestNode node;

    @BeforeAll
    void start() throws Exception {
        node = TestNode.start("engine", Map.of("agentexec.sandbox.docker.warm-pool.size", 0));
    }

    @AfterAll
    void stop() {
        node.close();
    }

    @Test
    void everyRouteIsDocumentedAndEveryDocumentedOperationIsRouted() throws Exception {
        JsonNode spec = new ObjectMapper(new YAMLFactory()).readTree(HttpApi.readOpenApi());
        Set<String> documented = new TreeSet<>();
        for (Iterator<Map.Entry<String, JsonNode>> paths = spec.get("paths").fields(); paths.hasNext(); ) {
            Map.Entry<String, JsonNode> path = paths.next();
            for (Iterator<String> ops = path.getValue().fieldNames(); ops.hasNext(); ) {
                String op = ops.next();
                if (HTTP_METHODS.contains(op)) {
                    documented.add(op.toUpperCase(Locale.ROOT) + " " + path.getKey());
                }
            }
        }
        Set<String> routed = new TreeSet<>();
        node.gateway.http().routes().forEach(r -> routed.add(r.method() + " " + r.template()));
        assertEquals(routed, documented);
    }

    @Test
    void theNodeServesItsOpenApiDocument() {
        TestNode.Reply r = node.get("/openapi.yaml", null);
        assertEquals(200, r.status());
        assertEquals(new String(HttpApi.readOpenApi(), java.nio.charset.StandardCharsets.UTF_8), r.body());
    }
}
