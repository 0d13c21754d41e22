/** The HTTP/1.1 and gRPC front end of a node: given the execution port, the tenants and the conversations, it serves them. */
package io.agentexec.gateway;
