/** This node's record of the executions it started, with a replay of their output for late followers. */
package io.agentexec.gateway.executions;
