/** One execution without a sandbox as a sharded, event-sourced entity, keyed by its idempotency key. */
package io.agentexec.cluster.execution;
