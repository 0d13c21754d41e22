/** How many gateway nodes share a tenant's rate (counted through the cluster's receptionist). */
package io.agentexec.gateway.cluster;
