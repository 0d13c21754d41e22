package io.agentexec.cluster;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * A test node in a JVM of its own (tests start it to kill it): {@code NodeMain [config-file ...]}, files layered in order
 * (e.g. {@code config/cluster.conf}), system properties over them. Prints one line when up.
 */
public final class NodeMain {
    private NodeMain() {
    }

    public static void main(String[] args) throws InterruptedException {
        AgentexecCluster node = AgentexecCluster.start(
                ClusterConfig.load(Arrays.stream(args).map(Path::of).toList()));
        Runtime.getRuntime().addShutdownHook(new Thread(node::close, "agentexec-shutdown"));
        System.out.println("agentexec node up: " + node.selfAddress() + " roles " + node.settings().roles());
        System.out.flush();
        node.system().getWhenTerminated().toCompletableFuture().join();
    }
}
