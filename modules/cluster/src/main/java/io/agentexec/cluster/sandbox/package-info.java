/** One sandbox (its container on a worker, its workspace, its runs in order) as a sharded, event-sourced entity. */
package io.agentexec.cluster.sandbox;
