/** The engine, no Pekko: SandboxEngine opens sandboxes (SandboxSession) on a backend and runs requests in them; OneOffRun is the one path for a run in a fresh sandbox. */
package io.agentexec.sandbox;
