/** Takes an entity's executions to the workers and turns what comes back into decisions the entity records. */
package io.agentexec.cluster.dispatch;
