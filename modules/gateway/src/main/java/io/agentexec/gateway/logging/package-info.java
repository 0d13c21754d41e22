/** JSON log lines with request, tenant and execution ids. */
package io.agentexec.gateway.logging;
