/** The engine's records: ExecutionRequest, Limits, SandboxOptions, ExecutionResult, Verdict. */
package io.agentexec.sandbox.model;
