package io.agentexec.cluster;

import com.typesafe.config.ConfigValueFactory;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A test node in a JVM of its own (tests start it to kill it): {@code NodeMain [config-file ...]}, files layered in order
 * (e.g. {@code config/cluster.conf}), system properties over them. Prints one line when up.
 * SIGTERM drains the node ({@link AgentexecCluster#drainAndStop()}); a node that stops otherwise (downed by the
 * split-brain resolver, drained through the admin route) ends the process (pekko's exit-jvm, on for this process).
 */
public final class NodeMain {
    private NodeMain() {
    }

    public static void main(String[] args) throws InterruptedException {
        AgentexecCluster node = AgentexecCluster.start(ClusterConfig.load(Arrays.stream(args).map(Path::of).toList())
                .withValue("pekko.coordinated-shutdown.exit-jvm", ConfigValueFactory.fromAnyRef("on")));
        Runtime.getRuntime().addShutdownHook(new Thread(() -> node.drainAndStop().toCompletableFuture().join(),
                "agentexec-shutdown"));
        System.out.println("agentexec node up: " + node.selfAddress() + " roles " + node.settings().roles());
        System.out.flush();
        node.system().getWhenTerminated().toCompletableFuture().join();
    }
}
