package io.agentexec.node.cli;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigValueFactory;
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
    /** A node's logback file is its {@link LogFormat}'s, unless the operator names another. */
    private static final String LOGBACK_PROPERTY = "logback.configurationFile";

    private ServeCommand() {
    }

    /**
     * Starts the node {@code bin/agentexec serve ARGS} runs, and prints where it listens; {@code console} also gets
     * the first API key when one is made. Throws {@link NodeConfig.ConfigFileException} for a configuration file that
     * is not there, {@link UsageException} for arguments that name none properly.
     */
    public static Guardian.Node start(List<String> args, Map<String, String> env, PrintStream console) {
        return start(NodeConfig.load(configFile(args), env), console, LogFormat.HUMAN);
    }

    private static Guardian.Node start(Config config, PrintStream out, LogFormat format) {
        Guardian.Node node = Guardian.start(config, format.console(out));
        StartupSummary.print(StartupSummary.of(config, node), format, out);
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
        configFile(args); // a bad command line is a usage error before anything starts
        // human lines for a person at a terminal, JSON lines for a collector (agentexec.logging.format), chosen
        // before the first log line
        LogFormat format = LogFormat.of(NodeConfig.load(configFile(args), env), System.console() != null);
        if (System.getProperty(LOGBACK_PROPERTY) == null) {
            System.setProperty(LOGBACK_PROPERTY, format.logbackFile());
        }
        Guardian.Node node;
        try {
            node = start(asProcess(NodeConfig.load(configFile(args), env)), out, format);
        } catch (NodeConfig.ConfigFileException | UsageException e) {
            throw e;
        } catch (RuntimeException e) {
            // what had started is stopped (the Guardian's rule); the log has the stack
            LoggerFactory.getLogger(ServeCommand.class).error("the node could not start", e);
            err.println("agentexec: the node could not start: " + e.getMessage());
            return Exit.FAILED.code();
        }
        CountDownLatch stopped = new CountDownLatch(1);
        // SIGTERM: pekko's own JVM shutdown hook runs the node's coordinated shutdown (gateway drain, worker drain,
        // leave: Guardian's order); this one joins it and lets the process end once the node's containers are gone.
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            node.close();
            stopped.countDown();
        }, "agentexec-node-shutdown"));
        // A node that stops by itself (downed by the split-brain resolver, drained through the admin route) ends the
        // process too: pekko's exit-jvm, and this wait.
        node.whenStopped().thenRun(stopped::countDown);
        stopped.await();
        return Exit.OK.code();
    }

    /**
     * The configuration of a node that is this process: when the node stops, whyever, the process ends (pekko's
     * exit-jvm; a downed node used to linger outside its cluster). Not for nodes embedded in another program.
     */
    static Config asProcess(Config config) {
        return config.withValue("pekko.coordinated-shutdown.exit-jvm", ConfigValueFactory.fromAnyRef("on"));
    }
}
