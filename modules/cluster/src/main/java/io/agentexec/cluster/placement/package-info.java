/** Picks a worker for each job from the workers' load reports. */
package io.agentexec.cluster.placement;
