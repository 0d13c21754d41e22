/** The execution policy as the cluster applies it at its API and again on every worker. */
package io.agentexec.cluster.policy;
