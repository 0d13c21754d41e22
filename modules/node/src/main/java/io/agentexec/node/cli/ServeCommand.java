package io.agentexec.node.cli;

import com.typesafe.config.Config;
import io.agentexec.node.Guardian;
import io.agentexec.node.NodeConfig;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import org.slf4j.LoggerFactory;

/**
 * {@code agentexec serve [FILE]}: runs a node ({@link Guardian}) until SIGTERM / Ctrl-C, then stops it gracefully.
 * The file (HOCON) is layered over the defaults ({@link NodeConfig}).
 */
public final class ServeCommand {
    static final String USAGE = "usage: agentexec serve [FILE | --config FILE]   (no file: $" + NodeConfig.ENVIRONMENT_VARIABLE
            + ", else the single-node defaults)";
    /** A node logs JSON, one object per line (the gateway's layout), unless the operator names another logback file. */
    private static final String LOGBACK_PROPERTY = "logback.configurationFile";
    private static final String NODE_LOGBACK = "agentexec-gateway-logback.xml";

    private ServeCommand() {
    }

    /**
     * Starts the node {@code bin/agentexec serve ARGS} runs, and prints where it listens; {@code console} also gets
     * the first API key when one is made. Throws {@link NodeConfig.ConfigFileException} for a configuration file that
     * is not there, {@link UsageException} for arguments that name none properly.
     */
    public static Guardian.Node start(List<String> args, Map<String, String> env, PrintStream console) {
        Config config = NodeConfig.load(configFile(args), env);
        Guardian.Node node = Guardian.start(config, console);
        console.println("agentexec gateway listening on http://" + config.getString("agentexec.gateway.host") + ":"
                + node.httpPort() + " (HTTP/1.1 and gRPC; conversations " + (node.conversationsAvailable()
                ? "on" : "off: engine backend") + ")");
        return node;
    }

    /** The file {@code serve FILE} or {@code serve --config FILE} names, if any. */
    static Optional<Path> configFile(List<String> given) {
        List<String> args = new ArrayList<>(given);
        Optional<Path> option = Cli.takeConfig(args);
        if (args.size() > 1 || (args.size() == 1 && args.get(0).startsWith("-"))) {
            throw new UsageException("serve takes one configuration FILE at most, got " + String.join(" ", given));
        }
        if (option.isPresent() && !args.isEmpty()) {
            throw new UsageException("serve takes FILE or --config FILE, not both");
        }
        return option.or(() -> args.stream().findFirst().map(Path::of));
    }

    /** Runs the node until the JVM is asked to stop. */
    static int run(List<String> args, Map<String, String> env, PrintStream out, PrintStream err) throws InterruptedException {
        if (System.getProperty(LOGBACK_PROPERTY) == null) {
            System.setProperty(LOGBACK_PROPERTY, NODE_LOGBACK);
        }
        configFile(args); // a bad command line is a usage error before anything starts
        Guardian.Node node;
        try {
            node = start(args, env, out);
        } catch (NodeConfig.ConfigFileException | UsageException e) {
            throw e;
        } catch (RuntimeException e) {
            // what had started is stopped (the Guardian's rule); the log has the stack
            LoggerFactory.getLogger(ServeCommand.class).error("the node could not start", e);
            err.println("agentexec: the node could not start: " + e.getMessage());
            return Exit.FAILED.code();
        }
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            node.close();
            stopped.countDown();
        }, "agentexec-node-shutdown"));
        stopped.await();
        return Exit.OK.code();
    }
}
