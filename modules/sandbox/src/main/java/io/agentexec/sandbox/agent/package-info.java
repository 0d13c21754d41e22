/** The controller's side of the in-sandbox agent (a static C binary, pid 1 of every sandbox): frames, caps, the binary and its private runtime directory. */
package io.agentexec.sandbox.agent;
