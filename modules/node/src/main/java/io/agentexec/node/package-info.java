/** The one composition root (Guardian: cluster, port, tenants, agents, gateway, in order) and the node's configuration. */
package io.agentexec.node;
