/** An agent's code through the execution port: its workspace's sandbox, the plan (profile, image, limits) under the tenant's policy. */
package io.agentexec.agents.execution;
