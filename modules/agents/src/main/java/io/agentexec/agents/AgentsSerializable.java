package io.agentexec.agents;

/**
 * Marker of every command, event and state of this module that may cross the network or reach the
 * journal: bound to Jackson CBOR in this module's reference.conf.
 */
public interface AgentsSerializable {
}
