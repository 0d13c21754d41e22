/** The HTTP transport: routes, JSON in and out, SSE, the error documents, connection limits. */
package io.agentexec.gateway.http;
