/** The seed's executors (AG2 chapter 4), defined once for every caller on top of the execution port: code policies, profiles, retries, tests, the cluster-wide cache and statistics. */
package io.agentexec.cluster.executors;
