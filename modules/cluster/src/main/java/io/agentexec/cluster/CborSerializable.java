package io.agentexec.cluster;

/**
 * Marker of every message and event that may cross the network or reach the journal: bound to
 * Jackson CBOR in this module's reference.conf. Live objects (sessions, containers) never implement it.
 */
public interface CborSerializable {
}
