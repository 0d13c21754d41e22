/** The agents' conversations adapted to the interface the gateway defines. */
package io.agentexec.node.conversations;
