/** THE execution port (start, look up, follow, cancel runs; sandboxes and their files; status), with its cluster and engine adapters. */
package io.agentexec.cluster.port;
