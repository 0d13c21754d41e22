/** What crosses the cluster and its API: specs, views, the one outcome type (ExecutionOutcome), tenant-scoped ids. */
package io.agentexec.cluster.api;
