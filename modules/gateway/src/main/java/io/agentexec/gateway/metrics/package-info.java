/** Prometheus metrics and their own listener. */
package io.agentexec.gateway.metrics;
