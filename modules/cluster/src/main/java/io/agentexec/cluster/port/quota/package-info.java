/** The tenants' live-sandbox quota: one sharded, event-sourced entity per tenant (or this JVM's memory for the engine adapter). */
package io.agentexec.cluster.port.quota;
