package io.agentexec.gateway;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.io.File;
import java.io.PrintStream;
import java.util.concurrent.CountDownLatch;

/**
 * Runs a gateway node: {@code java ... io.agentexec.gateway.GatewayMain [config/local.conf]}. The
 * file (HOCON) is layered over the modules' reference.conf; environment variables override both.
 * Stops gracefully on SIGTERM / Ctrl-C.
 */
public final class GatewayMain {
    private GatewayMain() {
    }

    /**
     * Starts the node {@code bin/agentexec serve} runs: on the default (cluster) backend one actor
     * system holds the cluster node (journal, migrations, worker), the agents and the gateway.
     */
    public static Gateway start(String[] args, PrintStream console) {
        Config config = args.length > 0
                ? ConfigFactory.parseFile(new File(args[0])).withFallback(ConfigFactory.load()).resolve()
                : ConfigFactory.load();
        Gateway gateway = Gateway.start(config, console);
        console.println("agentexec gateway listening on http://" + config.getString("agentexec.gateway.host") + ":"
                + gateway.httpPort() + " (HTTP/1.1 and gRPC; conversations " + (gateway.conversationsAvailable()
                ? "on" : "off: engine backend") + ")");
        return gateway;
    }

    public static void main(String[] args) throws InterruptedException {
        if (System.getProperty("logback.configurationFile") == null) {
            System.setProperty("logback.configurationFile", "agentexec-gateway-logback.xml");
        }
        Gateway gateway = start(args, System.out);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            gateway.close();
            stopped.countDown();
        }, "agentexec-gateway-shutdown"));
        stopped.await();
    }
}
