/** Conversations and agents as sharded, event-sourced entities; the pipeline an agent's code goes through. */
package io.agentexec.agents.entity;
