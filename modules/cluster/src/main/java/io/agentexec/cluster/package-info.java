/** One agentexec node of the Pekko cluster (AgentexecCluster): roles, settings, the journal, the entities' and the worker's start. */
package io.agentexec.cluster;
