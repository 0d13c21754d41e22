/** The gRPC transport (h2c), mapping protos to the gateway's calls and back. */
package io.agentexec.gateway.grpc;
